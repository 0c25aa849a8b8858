"""The output of ``qgen generate``: JSON lines written block by block with a journal, so that a
run killed at any moment (``kill -9`` included) continues where it stopped when the same command
runs again, with no record lost, none twice and no torn line.

Beside ``qa.jsonl`` the journal ``qa.jsonl.progress`` holds one JSON line per finished block,
written only after the block's records are flushed to disk: ``{"block": b, "start": s, "end": e,
"passages": n, "pairs": p, "empty": k}`` (byte range of its records). The first line is the run's
fingerprint (input file, model, seed, settings, processes); the last, ``{"complete": true}``. On a
restart the output is cut back to the end of the last journaled block (dropping a half-written
block) and the run skips the journaled blocks. A journal from a different command is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any


class OutputError(ValueError):
    """An output that this run may not write (exists, belongs to another command, damaged)."""


__all__ = ["JournaledOutput", "OutputError", "journal_path", "read_journal"]


def journal_path(path: str) -> str:
    return path + ".progress"


@dataclass
class Journal:
    fingerprint: dict[str, Any] | None = None
    start: int = 0  # byte offset where this run's records begin (--append)
    blocks: dict[int, dict[str, int]] = field(default_factory=dict)
    complete: bool = False
    valid_bytes: int = 0  # the journal's length up to its last whole line

    @property
    def end(self) -> int:
        return max((b["end"] for b in self.blocks.values()), default=self.start)


def read_journal(path: str) -> Journal | None:
    """The journal of output ``path``, or None. A torn last line (a crash mid-write) is
    ignored."""
    jp = journal_path(path)
    if not os.path.isfile(jp):
        return None
    journal = Journal()
    with open(jp, "rb") as f:
        for raw in f:
            try:
                if not raw.endswith(b"\n"):
                    raise ValueError("torn")
                entry = json.loads(raw)
            except ValueError:
                break  # torn line: everything after it is unwritten
            journal.valid_bytes += len(raw)
            if "fingerprint" in entry:
                journal.fingerprint, journal.start = entry["fingerprint"], entry.get("start", 0)
            elif entry.get("complete"):
                journal.complete = True
            elif "block" in entry:
                journal.blocks[entry["block"]] = entry
    return journal


def _fsync(f) -> None:
    f.flush()
    os.fsync(f.fileno())


def _ends_mid_line(path: str) -> bool:
    if os.path.getsize(path) == 0:
        return False
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _differences(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


class JournaledOutput:
    """Append-only JSON-lines output with a resume journal.

    Args:
        path: the output file.
        fingerprint: what makes two runs the same command (a different one is refused).
        overwrite: start again, deleting the output and its journal.
        append: add this run to an existing output (not journaled by this command).
    """

    def __init__(self, path: str, fingerprint: dict[str, Any], overwrite: bool, append: bool):
        self.path = path
        journal = read_journal(path)
        if overwrite:
            journal = None
            for p in (path, journal_path(path)):
                if os.path.exists(p):
                    os.remove(p)
        if journal is not None and journal.fingerprint != fingerprint and not append:
            diff = _differences(journal.fingerprint or {}, fingerprint)
            raise OutputError(
                f"{path}: made by a different command (it differs in {', '.join(diff)}); pass "
                "--overwrite to replace it, or --append to add this run to it"
            )
        resuming = journal is not None and journal.fingerprint == fingerprint
        if resuming:
            size = os.path.getsize(path) if os.path.exists(path) else -1
            if size < journal.end or (journal.complete and size != journal.end):
                what = "missing" if size < 0 else f"{size} bytes, its journal says {journal.end}"
                raise OutputError(
                    f"{path}: the output does not match its journal ({what}): it was changed "
                    "after the run; pass --overwrite to generate it again"
                )
            self.journal = journal  # resume (or nothing left to do)
        elif os.path.exists(path) and not append:
            raise OutputError(
                f"{path}: output exists; pass --overwrite to replace it or --append to add to it"
            )
        else:
            if append and os.path.exists(path) and _ends_mid_line(path):
                with open(path, "ab") as f:  # this run's first record on a line of its own
                    f.write(b"\n")
            start = os.path.getsize(path) if os.path.exists(path) else 0
            self.journal = Journal(fingerprint=fingerprint, start=start)
            with open(journal_path(path), "w", encoding="utf-8") as f:
                f.write(json.dumps({"fingerprint": fingerprint, "start": start}) + "\n")
                _fsync(f)
        if self.journal.complete:
            self._out = self._log = None
            return
        # cut a half-written block off: the journal says where the last finished block ends;
        # and a torn journal line, so that the next entry starts on a line of its own
        with open(path, "ab"):
            pass
        if resuming:
            for file, length in ((path, journal.end), (journal_path(path), journal.valid_bytes)):
                if os.path.getsize(file) > length:
                    with open(file, "r+b") as f:
                        f.truncate(length)
        self._out = open(path, "ab")
        self._log = open(journal_path(path), "a", encoding="utf-8")

    @property
    def done(self) -> dict[int, dict[str, int]]:
        """The blocks already written (by an earlier, interrupted run of this command)."""
        return self.journal.blocks

    @property
    def complete(self) -> bool:
        return self.journal.complete

    def write_block(
        self,
        block: int,
        records: list[dict],
        passages: int,
        empty: int,
        filtered: dict[str, int] | None = None,
        languages: dict[str, int] | None = None,
    ) -> None:
        """Write one block's records, then journal it (in that order, each flushed to disk);
        ``filtered`` counts the pairs dropped by each filter, ``languages`` the passages of each
        language."""
        start = self._out.tell()
        for record in records:
            self._out.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        _fsync(self._out)
        entry = {
            "block": block, "start": start, "end": self._out.tell(), "passages": passages,
            "pairs": len(records), "empty": empty, "filtered": dict(filtered or {}),
            **({"languages": dict(languages)} if languages else {}),
        }  # fmt: skip
        self._log.write(json.dumps(entry) + "\n")
        _fsync(self._log)
        self.journal.blocks[block] = entry

    def finish(self) -> None:
        """Mark the run complete and close the files."""
        if self._log is not None:
            self._log.write(json.dumps({"complete": True}) + "\n")
            _fsync(self._log)
            self.journal.complete = True
        self.close()

    def close(self) -> None:
        for f in (self._out, self._log):
            if f is not None:
                f.close()
        self._out = self._log = None

    def totals(self) -> dict[str, Any]:
        """Passages, pairs kept, passages without a pair and pairs filtered (by reason) over
        every journaled block."""
        blocks = self.journal.blocks.values()
        filtered: dict[str, int] = {}
        languages: dict[str, int] = {}
        for b in blocks:
            for reason, n in b.get("filtered", {}).items():
                filtered[reason] = filtered.get(reason, 0) + n
            for language, n in b.get("languages", {}).items():
                languages[language] = languages.get(language, 0) + n
        return {
            "passages": sum(b["passages"] for b in blocks),
            "pairs": sum(b["pairs"] for b in blocks),
            "passages_without_pairs": sum(b["empty"] for b in blocks),
            "filtered": filtered,
            "languages": languages,
        }

    def records(self):
        """The records this run (and its interrupted attempts) wrote, one parsed JSON line at a
        time (with ``--append``, not what the file held before)."""
        remaining = self.journal.end - self.journal.start
        with open(self.path, "rb") as f:
            f.seek(self.journal.start)
            for line in f:
                if remaining <= 0:
                    break
                remaining -= len(line)
                yield json.loads(line)
