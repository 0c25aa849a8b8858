"""scripts/build_chinese_data.py: Traditional -> Simplified with offsets that still point at the
answers, wrong offsets recomputed, unusable questions dropped and counted."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import build_chinese_data as build  # noqa: E402


def _squad(path, context, qas):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def test_conversion_keeps_offsets_on_the_answers(tmp_path, monkeypatch):
    pytest.importorskip("opencc")
    shared = tmp_path / "shared"
    zh = "长城是中国古代的军事防御工程。明朝是最后一个修筑长城的朝代。"
    _squad(shared / "cmrc2018/cmrc2018_train.json", zh, [
        {"id": "c1", "question": "哪个朝代最后修筑长城？", "answers": [{"text": "明朝", "answer_start": 3}]},
        {"id": "c2", "question": "不在文中？", "answers": [{"text": "清朝", "answer_start": 0}]},
    ])  # fmt: skip
    tw = "在歐洲，梵語的學術研究，由德國學者陸特和漢斯雷頓開創。"
    for name in ("DRCD_dev.json", "DRCD_test.json"):
        _squad(shared / "drcd" / name, tw, [
            {"id": "d1", "question": "陸特是哪國學者？", "answers": [{"text": "德國", "answer_start": 13}]},
        ])  # fmt: skip
    _squad(shared / "xquad/xquad.zh.train.json", zh, [
        {"id": "x1", "question": "长城是什么？", "answers": [{"text": "军事防御工程", "answer_start": 8}]},
    ])  # fmt: skip
    _squad(shared / "cmrc2018/cmrc2018_trial.json", zh, [
        {"id": "t1", "question": "长城在哪？", "answers": [{"text": "中国", "answer_start": 3}]},
    ])  # fmt: skip
    out = tmp_path / "out"
    reports = build.main(["--shared", str(shared), "--output_dir", str(out)])
    by_source = {r["source"]: r for r in reports}
    cmrc = by_source["cmrc2018/cmrc2018_train.json"]
    assert cmrc["questions"] == 2 and cmrc["kept"] == 1
    assert cmrc["offsets_recomputed"] == 1 and cmrc["answers_not_in_context"] == 1
    assert cmrc["dropped_no_answer"] == 1
    train = json.loads((out / "zh_train.json").read_text(encoding="utf-8"))
    rows = [(p["context"], qa) for a in train["data"] for p in a["paragraphs"] for qa in p["qas"]]
    assert len(rows) == 4
    for context, qa in rows:  # every offset points at its answer, after conversion too
        for ans in qa["answers"]:
            assert (
                context[ans["answer_start"] : ans["answer_start"] + len(ans["text"])] == ans["text"]
            )
    drcd = [qa for c, qa in rows if qa["id"] == "d1"]
    assert (
        drcd[0]["answers"][0]["text"] == "德国"
        and "欧洲" in [c for c, qa in rows if qa["id"] == "d1"][0]
    )
    assert drcd[0]["question"] == "陆特是哪国学者？"
    assert json.loads((out / "zh_validation.json").read_text(encoding="utf-8"))["data"]
    assert not list(out.glob("*.tmp"))
