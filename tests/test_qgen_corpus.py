"""qgen.io.corpus: every input format as a stream, stable ids, errors by file/line/field, and
memory that does not grow with the corpus."""

import json
import tracemalloc

import datasets
import pytest

from qgen.io.corpus import Passage, count_passages, iter_passages
from qgen.io.squad import QGenDataError

ROWS = [
    {"id": "a", "title": "T", "context": "the cat sat on the mat."},
    {"id": None, "title": None, "context": "paris is the capital of france."},
    {"id": "c", "title": "U", "context": "a dog sat."},
]


def _expected(stem: str, default_ids: list[str]) -> list[Passage]:
    return [
        Passage(r["id"] if r["id"] is not None else d, r["title"] or "", r["context"])
        for r, d in zip(ROWS, default_ids)
    ]


def test_txt_and_jsonl_ids_are_line_numbers(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("first passage.\n\n  second passage.  \n")
    assert list(iter_passages(txt)) == [
        Passage("p-1", "", "first passage."),
        Passage("p-3", "", "second passage."),
    ]
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    assert list(iter_passages(jsonl)) == _expected("q", ["", "q-2", ""])


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_tabular_formats_through_datasets(tmp_path, suffix):
    ds = datasets.Dataset.from_list(ROWS)
    path = tmp_path / f"corpus.{suffix}"
    getattr(ds, f"to_{suffix}")(str(path))
    assert list(iter_passages(path)) == _expected("corpus", ["", "corpus-1", ""])
    assert count_passages(path) == 3


def test_datasets_objects_and_plain_iterables():
    ds = datasets.Dataset.from_list(ROWS)
    assert list(iter_passages(ds)) == _expected("", ["", "1", ""])
    stream = ds.to_iterable_dataset()
    assert list(iter_passages(stream)) == _expected("", ["", "1", ""])
    assert [p.id for p in iter_passages(["one.", "two."])] == ["0", "1"]
    with pytest.raises(QGenDataError, match=r"list row 1: field 'context' is an empty passage"):
        list(iter_passages(["one.", " "]))


def test_squad_json_ids(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"data": [{"title": "A", "paragraphs": [{"context": "x y."}]}]}))
    assert list(iter_passages(path)) == [Passage("s-0-0", "A", "x y.")]


def test_errors_name_the_place(tmp_path):
    with pytest.raises(QGenDataError, match="no such file"):
        list(iter_passages(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.csv"
    bad.write_text("context,id\nok.,1\n  ,2\n")
    with pytest.raises(QGenDataError, match="bad.csv: line 3: field 'context' is an empty"):
        count_passages(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(QGenDataError, match="no passages found"):
        count_passages(empty)
    twice = tmp_path / "twice.jsonl"
    twice.write_text('{"id": "a", "context": "x."}\n{"id": "a", "context": "y."}\n')
    with pytest.raises(QGenDataError, match="passage id 'a' is used twice"):
        count_passages(twice)


def _peak_bytes(path) -> int:
    tracemalloc.start()
    n = 0
    for _ in iter_passages(path):
        n += 1
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("suffix", ["txt", "jsonl", "parquet"])
def test_memory_stays_flat_on_a_large_corpus(tmp_path, suffix):
    """Reading 40x more passages does not take (anywhere near) 40x the memory: a stream."""
    text = "the cat sat on the mat in paris, the capital of france, on the river. " * 4
    sizes = {}
    for n in (1_000, 40_000):
        path = tmp_path / f"c{n}.{suffix}"
        if suffix == "txt":
            path.write_text((text + "\n") * n)
        elif suffix == "jsonl":
            path.write_text((json.dumps({"context": text}) + "\n") * n)
        else:
            datasets.Dataset.from_dict({"context": [text] * n}).to_parquet(str(path))
        sizes[n] = (_peak_bytes(path), n * len(text))
    (small_peak, _), (large_peak, large_text) = sizes[1_000], sizes[40_000]
    assert large_peak < large_text / 4  # far below the corpus's text
    assert large_peak < 3 * small_peak + 2_000_000  # and not growing with it
