"""``decide(facts, ruleset) -> Decision``: pure, and it says why.

Rules are tried in order. A rule applies when all its conditions hold; it is then used with the
first of its models (``model``, then ``fallback``) that can run here and is expected to fit the
folder's latency budget. A rule that applies but cannot be used is passed over, and the decision
records why; a ``required`` rule is never passed over (it ignores the budget, and when none of
its models can run the decision is blocked). When no rule can be used, the fastest available
model is the last resort, so a missing model never stops a folder that has another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mattectl.rules.crop import crop_box
from mattectl.rules.facts import Box, ImageFacts
from mattectl.rules.schema import (
    Conditions,
    Rule,
    RuleOutput,
    RuleSet,
    SecondOpinion,
    glob_matches,
)


class Outcome(StrEnum):
    CHOSEN = "chosen"
    NO_MATCH = "no match"  # a condition does not hold
    UNAVAILABLE = "unavailable"  # applies, but none of its models can run here
    OVER_BUDGET = "over budget"  # applies, but its models are expected to exceed the budget
    BLOCKED = "blocked"  # required, and none of its models can run: the job cannot proceed
    NOT_REACHED = "not reached"  # an earlier rule decided


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    outcome: Outcome
    detail: str


@dataclass(frozen=True)
class Decision:
    """The model to run (None only when ``blocked``), the crop to matte (None: the whole frame),
    how the deciding rule wants the photo written (None: as the folder says), why, and what
    happened to every rule on the way."""

    preset: str
    rule: str | None  # None: no rule could be used and the last resort chose
    model: str | None
    crop: Box | None
    why: str
    notes: tuple[str, ...]  # fallbacks taken and crops skipped, in order
    trace: tuple[RuleOutcome, ...]
    fallback: bool  # the first rule that applied did not get its first model
    blocked: str | None = None
    output: RuleOutput | None = None
    second_opinion: SecondOpinion | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset, "rule": self.rule, "model": self.model,
            "crop": self.crop.as_list() if self.crop else None, "why": self.why,
            "notes": list(self.notes), "fallback": self.fallback, "blocked": self.blocked,
            "output": self.output.to_dict() if self.output else None,
            "second_opinion": (self.second_opinion.model_dump(mode="json")
                               if self.second_opinion else None),
            "trace": [{"rule": t.rule, "outcome": str(t.outcome), "detail": t.detail}
                      for t in self.trace],
        }


# -- conditions: each returns None when the rule does not set it, else (holds, description) ----

Check = tuple[bool, str] | None


def _subject(when: Conditions, facts: ImageFacts) -> Check:
    if when.subject_fraction is None:
        return None
    if facts.subject is None:
        return False, f"subject unknown ({facts.subject_note})"
    value = facts.subject.fraction
    return (when.subject_fraction.contains(value),
            f"subject fraction {value:.3f} (wanted {when.subject_fraction})")


def _megapixels(when: Conditions, facts: ImageFacts) -> Check:
    if when.megapixels is None:
        return None
    value = facts.megapixels
    return when.megapixels.contains(value), f"{value:.2f} MP (wanted {when.megapixels})"


def _budget(when: Conditions, facts: ImageFacts) -> Check:
    if when.latency_budget_ms is None:
        return None
    budget = facts.latency_budget_ms
    value = float("inf") if budget is None else budget
    shown = "no latency budget" if budget is None else f"latency budget {budget:.0f} ms"
    return when.latency_budget_ms.contains(value), f"{shown} (wanted {when.latency_budget_ms})"


def _folder(when: Conditions, facts: ImageFacts) -> Check:
    if when.folder is None:
        return None
    holds = glob_matches(when.folder, facts.folder)
    return holds, f"folder '{facts.folder}' {'matches' if holds else 'not in'} {when.folder}"


def _file_name(when: Conditions, facts: ImageFacts) -> Check:
    if when.file_name is None:
        return None
    holds = glob_matches(when.file_name, facts.file_name, facts.rel_path)
    return holds, f"file '{facts.rel_path}' {'matches' if holds else 'not in'} {when.file_name}"


CHECKS: tuple[Callable[[Conditions, ImageFacts], Check], ...] = (
    _folder, _file_name, _megapixels, _budget, _subject,
)


def evaluate(when: Conditions, facts: ImageFacts) -> tuple[bool, list[str]]:
    """Whether every condition holds, with what was checked (up to the first that failed)."""
    seen: list[str] = []
    for check in CHECKS:
        result = check(when, facts)
        if result is None:
            continue
        holds, text = result
        seen.append(text)
        if not holds:
            return False, seen
    return True, seen


# -- choosing a rule's model -------------------------------------------------------------------

def _cost(name: str, facts: ImageFacts, cropped: bool) -> tuple[float, str]:
    """Expected further inference time of a model on this image, and where the figure is from."""
    if not cropped and name == facts.probe_model:
        return 0.0, "the probe already computed its mask"
    model = facts.model(name)
    return model.expected_ms, model.expected_from


def _pick_model(rule: Rule, facts: ImageFacts, cropped: bool
                ) -> tuple[str | None, list[str], Outcome]:
    """The first of the rule's models that can run (and fits the budget unless required)."""
    notes: list[str] = []
    outcome = Outcome.UNAVAILABLE
    budget = facts.latency_budget_ms
    for name in rule.candidates:
        model = facts.model(name)
        if not model.available:
            notes.append(f"{name} unavailable: {model.reason}")
            continue
        ms, source = _cost(name, facts, cropped)
        if budget is not None and ms > budget:
            text = f"{name} expected {ms:.0f} ms ({source}) > budget {budget:.0f} ms"
            if not rule.required:
                notes.append(text)
                outcome = Outcome.OVER_BUDGET
                continue
            notes.append(f"{text}, used anyway: the rule is required")
        return name, notes, Outcome.CHOSEN
    return None, notes, outcome


def _crop(rule: Rule, facts: ImageFacts) -> tuple[Box | None, list[str]]:
    if not rule.crop_to_subject:
        return None, []
    subject = facts.subject
    if subject is None:
        return None, [f"crop skipped: subject unknown ({facts.subject_note})"]
    if subject.box is None:
        return None, ["crop skipped: the probe found no subject"]
    box = crop_box(subject.box, facts.width, facts.height, rule.crop_margin)
    if box is None:
        return None, ["crop skipped: the subject with its margin covers most of the frame"]
    return box, []


def _last_resort(facts: ImageFacts) -> tuple[str | None, str]:
    """The fastest available model within the budget, else the fastest available one."""
    ranked = sorted((m.expected_ms, name) for name, m in facts.models.items() if m.available)
    if not ranked:
        return None, "no model can run here"
    budget = facts.latency_budget_ms
    fitting = [item for item in ranked if budget is None or item[0] <= budget]
    ms, name = (fitting or ranked)[0]
    fits = "within" if fitting else "although over"
    return name, f"no rule could be used: fastest available model ({ms:.0f} ms, {fits} budget)"


def decide(facts: ImageFacts, ruleset: RuleSet, preset: str = "?") -> Decision:
    """The decision for one image. Pure: same facts and rules, same decision."""
    trace: list[RuleOutcome] = []
    notes: list[str] = []
    for index, rule in enumerate(ruleset.rules):
        holds, seen = evaluate(rule.when, facts)
        if not holds:
            trace.append(RuleOutcome(rule.name, Outcome.NO_MATCH, "; ".join(seen)))
            continue
        box, crop_notes = _crop(rule, facts)
        model, model_notes, outcome = _pick_model(rule, facts, box is not None)
        notes += [f"rule '{rule.name}': {note}" for note in model_notes]
        if model is None:
            blocked = rule.required
            trace.append(RuleOutcome(rule.name, Outcome.BLOCKED if blocked else outcome,
                                     "; ".join(model_notes)))
            if blocked:
                return _blocked(preset, rule, model_notes, trace, notes, ruleset, index)
            continue
        why = f"{rule.description or rule.name} ({'; '.join(seen) or 'no conditions'})"
        written = f"; output {rule.output}" if rule.output else ""
        trace.append(RuleOutcome(rule.name, Outcome.CHOSEN,
                                 f"{model}{' on a crop' if box else ''}{written}; "
                                 f"{'; '.join(seen)}"))
        trace += [RuleOutcome(r.name, Outcome.NOT_REACHED, "")
                  for r in ruleset.rules[index + 1:]]
        fallback = any(t.outcome in (Outcome.UNAVAILABLE, Outcome.OVER_BUDGET) for t in trace)
        return Decision(preset, rule.name, model, box, why, tuple(notes + crop_notes),
                        tuple(trace), fallback or model != rule.model, output=rule.output,
                        second_opinion=rule.second_opinion)
    model, why = _last_resort(facts)
    return Decision(preset, None, model, None, why, tuple(notes), tuple(trace), True,
                    blocked=None if model else why)


def _blocked(preset: str, rule: Rule, rule_notes: list[str], trace: list[RuleOutcome],
             notes: list[str], ruleset: RuleSet, index: int) -> Decision:
    why = f"rule '{rule.name}' is required and none of its models can run: " + "; ".join(
        rule_notes)
    trace += [RuleOutcome(r.name, Outcome.NOT_REACHED, "") for r in ruleset.rules[index + 1:]]
    return Decision(preset, rule.name, None, None, why, tuple(notes), tuple(trace), True,
                    blocked=why)
