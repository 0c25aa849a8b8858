"""Build the Chinese qag training and validation files from ``../shared/data``, reproducibly:

    pip install ".[zh]"        # OpenCC, for DRCD's Traditional Chinese
    python scripts/build_chinese_data.py --shared ../shared/data --output_dir runs/zh-data

Training (``zh_train.json``, SQuAD JSON, Simplified Chinese):
  * CMRC 2018 train (10,142 questions; its wrong answer offsets are recomputed where the answer
    occurs once in the passage, the nearest occurrence otherwise, and dropped when it is absent),
  * DRCD dev and test (7,017 questions), converted Traditional -> Simplified with OpenCC ``t2s``,
  * XQuAD zh (962).
Validation (``zh_validation.json``): CMRC 2018 trial. ``cmrc2018_dev.json`` is never read here: it
is the report set. Every source is CC BY-SA (CMRC 2018, XQuAD 4.0; DRCD 3.0), so is the model.
It prints one JSON line of counts per source: questions read, kept, offsets recomputed, dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter

TRAIN_SOURCES = (
    ("cmrc2018/cmrc2018_train.json", False),
    ("drcd/DRCD_dev.json", True),
    ("drcd/DRCD_test.json", True),
    ("xquad/xquad.zh.train.json", False),
)
VALIDATION_SOURCES = (("cmrc2018/cmrc2018_trial.json", False),)


def _converter():
    try:
        import opencc
    except ImportError:
        sys.exit(
            "build_chinese_data: DRCD is Traditional Chinese; install OpenCC: pip install '.[zh]'"
        )
    return opencc.OpenCC("t2s")


def _place(context: str, text: str, start: int, counts: Counter) -> int | None:
    """The start of ``text`` in ``context``: the given one when it points at the text, else the
    only (or nearest) occurrence; None when the text does not occur."""
    if context[start : start + len(text)] == text:
        return start
    hits = [m.start() for m in re.finditer(re.escape(text), context)]
    if not hits:
        counts["answers_not_in_context"] += 1
        return None
    counts["offsets_recomputed" if len(hits) == 1 else "offsets_recomputed_nearest"] += 1
    return min(hits, key=lambda h: abs(h - start))


def convert_file(path: str, to_simplified, counts: Counter) -> list[dict]:
    """The articles of one SQuAD file, Simplified Chinese, with offsets that point at answers."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    conv = to_simplified or (lambda s: s)
    articles = []
    for a, article in enumerate(data):
        paragraphs = []
        for p, para in enumerate(article["paragraphs"]):
            raw_context = para["context"]
            context = conv(raw_context)
            qas = []
            for q, qa in enumerate(para["qas"]):
                counts["questions"] += 1
                answers = []
                for ans in qa.get("answers", []):
                    text = conv(ans["text"]).strip()
                    if not text:
                        counts["empty_answers"] += 1
                        continue
                    # OpenCC t2s maps characters one to one here; the prefix keeps the offset
                    start = len(conv(raw_context[: int(ans["answer_start"])]))
                    start = _place(context, text, start, counts)
                    if start is not None:
                        answers.append({"text": text, "answer_start": start})
                if not answers:
                    counts["dropped_no_answer"] += 1
                    continue
                qid = str(qa.get("id", f"{a}-{p}-{q}"))
                qas.append(
                    {"id": qid, "question": conv(qa["question"]).strip(), "answers": answers}
                )
                counts["kept"] += 1
            if qas:
                paragraphs.append({"context": context, "qas": qas})
        if paragraphs:
            articles.append({"title": conv(article.get("title", "")), "paragraphs": paragraphs})
    return articles


def build(shared: str, sources, to_simplified, name: str) -> tuple[dict, list[dict]]:
    articles, report = [], []
    for rel, traditional in sources:
        counts = Counter()
        path = os.path.join(shared, rel)
        articles += convert_file(path, to_simplified if traditional else None, counts)
        report.append({"set": name, "source": rel, "opencc_t2s": traditional, **counts})
    return {"version": "qgen-zh-1", "data": articles}, report


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="../shared/data", help="the shared data folder")
    parser.add_argument("--output_dir", default="runs/zh-data")
    args = parser.parse_args(argv)
    t2s = _converter().convert
    os.makedirs(args.output_dir, exist_ok=True)
    reports = []
    for name, sources in (("train", TRAIN_SOURCES), ("validation", VALIDATION_SOURCES)):
        obj, report = build(args.shared, sources, t2s, name)
        out = os.path.join(args.output_dir, f"zh_{name}.json")
        tmp = out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False)
        os.replace(tmp, out)  # never a half-written file under the final name
        for line in report:
            print(json.dumps(line, ensure_ascii=False))
        reports += report
    return reports


if __name__ == "__main__":
    main()
