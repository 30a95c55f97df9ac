"""A decision record (what the job log keeps) as lines a person reads: for `mattectl jobs show`
and `mattectl rules explain`. Pure; tolerant of records with fields missing."""

from __future__ import annotations

from typing import Any

from mattectl.rules.schema import output_text


def _box(box: list[int] | None) -> str:
    return "-" if not box else f"{box[0]},{box[1]}-{box[2]},{box[3]}"


def _subject(facts: dict[str, Any]) -> str:
    subject = facts.get("subject")
    note = facts.get("subject_note") or ""
    if subject is None:
        return f"unknown ({note})"
    return f"{subject['fraction']:.1%} of the frame, box {_box(subject.get('box'))} ({note})"


def _models(facts: dict[str, Any]) -> list[str]:
    lines = []
    for name, m in facts.get("models", {}).items():
        if m.get("available"):
            lines.append(f"{name:<16} available    expected {m.get('expected_ms')} ms "
                         f"({m.get('expected_from')})")
        else:
            lines.append(f"{name:<16} unavailable  {m.get('reason')}")
    return lines


def _trace(record: dict[str, Any]) -> list[str]:
    width = max((len(t["rule"]) for t in record.get("trace", [])), default=0)
    return [f"{i}. {t['rule']:<{width}}  {t['outcome']:<12} {t.get('detail') or ''}".rstrip()
            for i, t in enumerate(record.get("trace", []), start=1)]


def _crop_check(check: dict[str, Any]) -> str:
    touched = [", ".join(sides) for sides in check.get("touched", []) if sides]
    passes = f"{check.get('rounds')} crop pass(es)"
    if touched:
        passes += f"; the subject touched the crop's {' then '.join(touched)} border"
    if check.get("whole_frame"):
        why = f" ({check['why']})" if check.get("why") else ""
        return f"{passes}; the whole frame was matted instead{why}"
    merged = check.get("merged_px") or 0
    tail = f"; {merged} px taken from the full-frame pass" if merged else ""
    return f"{passes}; matted on {_box(check.get('box'))}{tail}"


def _second_opinion(second: dict[str, Any]) -> str:
    text = (f"confidence {second['first']:.2f} under {second['below']:.2f}: "
            f"{second['model']} asked")
    if "second" in second:
        text += f", confidence {second['second']:.2f}"
    text += f"; kept the {second.get('kept')} alpha"
    return text + (f" ({second['note']})" if second.get("note") else "")


def describe(record: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, text)`` rows; a label is empty on continuation rows."""
    rows: list[tuple[str, str]] = []

    def add(label: str, lines: list[str]) -> None:
        rows.extend((label if i == 0 else "", line) for i, line in enumerate(lines))

    facts = record.get("facts") or {}
    model = record.get("model")
    if record.get("blocked"):
        add("decision", [f"blocked: {record['blocked']}"])
    else:
        crop = f" on a crop {_box(record['crop'])}" if record.get("crop") else ""
        rule = f"rule '{record['rule']}'" if record.get("rule") else "no rule (last resort)"
        add("decision", [f"{model}{crop}, {rule} of preset '{record.get('preset')}'"
                         f"{' (a fallback)' if record.get('fallback') else ''}"])
    if record.get("output"):
        add("output", [f"{output_text(record['output'])} (rule '{record.get('rule')}'; "
                       "the folder's settings for the rest)"])
    add("why", [record.get("why") or "-"])
    add("notes", list(record.get("notes") or []))
    if facts:
        budget = facts.get("latency_budget_ms")
        add("image", [f"{facts.get('file')}: {facts.get('width')}x{facts.get('height')} "
                      f"({facts.get('megapixels')} MP), folder {facts.get('folder')}, "
                      f"device {facts.get('device')}, "
                      f"budget {'none' if budget is None else f'{budget:.0f} ms'}"])
        add("subject", [_subject(facts)])
        add("models", _models(facts))
    probe = record.get("probe")
    if probe:
        add("probe", [f"{probe['model']} in {probe['ms']:.0f} ms"
                      f"{', its mask reused as the cutout' if probe.get('reused') else ''}"])
    check = record.get("crop_check")
    if check:
        add("crop check", [_crop_check(check)])
    second = record.get("second_opinion")
    if second and "first" in second:
        add("second opinion", [_second_opinion(second)])
    add("rules", _trace(record))
    if record.get("preset_file"):
        add("preset", [f"{record['preset_file']} (sha256 {record.get('preset_sha256')})"])
    return rows
