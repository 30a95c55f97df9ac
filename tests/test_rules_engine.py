"""decide(facts, rules): table-driven decisions over facts, on the shipped presets and on small
rule sets written for one behaviour each."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import pytest

from mattectl.rules.engine import Outcome, decide, evaluate
from mattectl.rules.facts import Box, ImageFacts, ModelFacts, Subject
from mattectl.rules.presets import find_presets, load_preset, preset_dirs
from mattectl.rules.schema import Conditions, RuleSet

# Expected times close to the CPU priors: bshm 3000, u2net 2100, u2net_human_seg 2100, u2netp 900.
TIMES = {"bshm": 3000.0, "u2net": 2100.0, "u2net_human_seg": 2100.0, "u2netp": 900.0}


BIG = Box(100, 100, 500, 700)


def facts(*, fraction: float | None = 0.5, box: Box | None = BIG,
          missing: tuple[str, ...] = (), budget: float | None = None, width: int = 1200,
          height: int = 800, folder: str = "studio", rel_path: str = "shoot/IMG_0001.jpg",
          probe_model: str | None = None) -> ImageFacts:
    models = {name: ModelFacts(name not in missing, "not installed" if name in missing else "",
                               ms, "prior") for name, ms in TIMES.items()}
    subject = None if fraction is None else Subject(fraction, box if fraction > 0 else None)
    return ImageFacts(width=width, height=height, folder=folder, rel_path=rel_path,
                      device="cpu", latency_budget_ms=budget, subject=subject,
                      subject_note="probed" if subject else "probe unavailable",
                      probe_model=probe_model, models=models)


def ruleset(text: str) -> RuleSet:
    return RuleSet.model_validate(tomllib.loads(text))


def shipped(name: str) -> RuleSet:
    return load_preset(find_presets(preset_dirs(None))[name]).ruleset


SMALL = Box(500, 300, 620, 560)  # a person 120x260 in a 1200x800 frame
NO_BSHM = ("bshm",)
ONLY_U2NETP = ("bshm", "u2net", "u2net_human_seg")

# (preset, facts, expected rule, expected model, cropped, fallback)
PRESET_CASES = [
    ("default", facts(fraction=0.6), "portrait", "bshm", False, False),
    ("default", facts(fraction=0.6, missing=NO_BSHM), "portrait", "u2net", False, True),
    ("default", facts(fraction=0.6, missing=ONLY_U2NETP), "portrait", "u2netp", False, True),
    ("default", facts(fraction=0.05, box=SMALL), "small-subject", "u2net", True, False),
    ("default", facts(fraction=0.05, box=SMALL, missing=ONLY_U2NETP), "small-subject",
     "u2netp", True, True),
    ("default", facts(fraction=0.25), "portrait", "bshm", False, False),  # min is included
    ("default", facts(fraction=None), "subject-unknown", "u2net", False, False),
    ("default", facts(fraction=0.6, budget=2500), "portrait", "u2net", False, True),
    ("default", facts(fraction=0.6, budget=1000), "portrait", "u2netp", False, True),
    ("ecommerce", facts(fraction=0.05, box=SMALL), "small-subject", "bshm", True, False),
    ("ecommerce", facts(fraction=0.6, missing=("bshm", "u2net")), "portrait",
     "u2net_human_seg", False, True),
    ("live", facts(fraction=0.6, probe_model="u2netp"), "fast", "u2netp", False, False),
    ("live", facts(fraction=0.05, box=SMALL, probe_model="u2netp"), "small-subject", "u2netp",
     True, False),
    ("group-and-small-subjects", facts(fraction=0.6, rel_path="Team_Group_01.JPG"),
     "named-group", "u2net", True, False),
    ("group-and-small-subjects", facts(fraction=0.3, box=SMALL), "small-subjects", "u2net",
     True, False),
    ("group-and-small-subjects", facts(fraction=0.6), "everything-else", "u2net", False, False),
]


@pytest.mark.parametrize(("preset", "given", "rule", "model", "cropped", "fallback"),
                         PRESET_CASES)
def test_shipped_presets_decide(preset: str, given: ImageFacts, rule: str, model: str,
                                cropped: bool, fallback: bool) -> None:
    decision = decide(given, shipped(preset), preset)
    assert (decision.rule, decision.model) == (rule, model), decision.to_dict()
    assert (decision.crop is not None) == cropped
    assert decision.fallback == fallback
    assert decision.blocked is None
    chosen = [t for t in decision.trace if t.outcome == Outcome.CHOSEN]
    assert [t.rule for t in chosen] == [rule]


def test_missing_model_falls_back_and_says_why() -> None:
    decision = decide(facts(fraction=0.6, missing=NO_BSHM), shipped("default"), "default")
    assert decision.model == "u2net"
    assert any("bshm unavailable: not installed" in note for note in decision.notes)
    record = decision.to_dict()
    assert record["fallback"] is True
    assert record["rule"] == "portrait"


def test_budget_skips_slow_models_and_records_it() -> None:
    decision = decide(facts(fraction=0.6, budget=1000), shipped("default"), "default")
    assert decision.model == "u2netp"
    over = [n for n in decision.notes if "> budget 1000 ms" in n]
    assert [n.split(": ")[1].split()[0] for n in over] == ["bshm", "u2net"]


BUDGET_RULES = """
[[rules]]
name = "quality"
model = "bshm"
when.megapixels = { max = 50 }

[[rules]]
name = "fast"
model = "u2netp"
"""


def test_budget_falls_through_to_the_next_rule() -> None:
    decision = decide(facts(budget=1000), ruleset(BUDGET_RULES), "t")
    assert decision.rule == "fast"
    assert decision.model == "u2netp"
    assert [(t.rule, t.outcome) for t in decision.trace] == [
        ("quality", Outcome.OVER_BUDGET), ("fast", Outcome.CHOSEN)]
    assert decision.fallback


def test_nothing_within_budget_takes_the_fastest_available_model() -> None:
    decision = decide(facts(budget=100), ruleset(BUDGET_RULES), "t")
    assert decision.rule is None
    assert decision.model == "u2netp"
    assert "fastest available model" in decision.why
    assert "over budget" in decision.why


def test_the_probes_own_mask_costs_nothing_against_the_budget() -> None:
    tight = facts(fraction=0.6, budget=100, probe_model="u2netp")
    decision = decide(tight, shipped("live"), "live")
    assert (decision.rule, decision.model) == ("fast", "u2netp")
    # ...but a crop needs a pass of its own, which the budget does count.
    small = replace(tight, subject=Subject(0.05, SMALL))
    cropped = decide(small, shipped("live"), "live")
    assert cropped.trace[0].outcome == Outcome.OVER_BUDGET
    assert cropped.rule == "fast"
    assert cropped.crop is None


REQUIRED = """
[[rules]]
name = "bshm-only"
model = "bshm"
required = true
when.folder = ["catalog*"]

[[rules]]
name = "rest"
model = "u2netp"
"""


def test_required_rule_blocks_instead_of_falling_back() -> None:
    decision = decide(facts(folder="catalog-2024", missing=NO_BSHM), ruleset(REQUIRED), "t")
    assert decision.model is None
    assert decision.blocked
    assert "required" in decision.blocked
    assert "bshm unavailable: not installed" in decision.blocked
    assert [t.outcome for t in decision.trace] == [Outcome.BLOCKED, Outcome.NOT_REACHED]


def test_required_rule_ignores_the_budget() -> None:
    decision = decide(facts(folder="catalog", budget=500), ruleset(REQUIRED), "t")
    assert decision.model == "bshm"
    assert any("used anyway: the rule is required" in note for note in decision.notes)


def test_required_rule_that_does_not_apply_changes_nothing() -> None:
    decision = decide(facts(folder="studio", missing=NO_BSHM), ruleset(REQUIRED), "t")
    assert (decision.rule, decision.model, decision.blocked) == ("rest", "u2netp", None)


def test_no_model_at_all_is_blocked() -> None:
    everything = tuple(TIMES)
    decision = decide(facts(missing=everything), ruleset(BUDGET_RULES), "t")
    assert decision.model is None
    assert decision.blocked == "no model can run here"


def test_unknown_model_counts_as_unavailable() -> None:
    given = replace(facts(), models={"u2netp": ModelFacts(True, "", 900, "prior")})
    decision = decide(given, shipped("default"), "default")
    assert decision.model == "u2netp"
    assert any("bshm unavailable: model 'bshm' is not known" in n for n in decision.notes)


@pytest.mark.parametrize(("subject", "expected_note"), [
    (None, "crop skipped: subject unknown"),
    (Subject(0.0, None), "crop skipped: the probe found no subject"),
    (Subject(0.2, Box(0, 0, 1100, 780)), "crop skipped: the subject with its margin covers"),
])
def test_crop_is_skipped_with_a_reason(subject: Subject | None, expected_note: str) -> None:
    rules = ruleset('[[rules]]\nname = "r"\nmodel = "u2netp"\ncrop_to_subject = true\n')
    decision = decide(replace(facts(), subject=subject), rules, "t")
    assert decision.crop is None
    assert any(note.startswith(expected_note) for note in decision.notes)


def test_crop_box_grows_the_subject_by_the_margin() -> None:
    rules = ruleset('[[rules]]\nname = "r"\nmodel = "u2netp"\ncrop_to_subject = true\n'
                    'crop_margin = 0.25\n')
    decision = decide(facts(fraction=0.05, box=SMALL), rules, "t")
    assert decision.crop == Box(470, 235, 650, 625)


# (conditions, facts, holds)
CONDITION_CASES = [
    ({"folder": ["live-*"]}, facts(folder="live-stage"), True),
    ({"folder": ["live-*"]}, facts(folder="studio"), False),
    ({"file_name": ["*group*"]}, facts(rel_path="a/b/Big_GROUP.jpg"), True),
    ({"file_name": ["weddings/*"]}, facts(rel_path="weddings/x.jpg"), True),
    ({"file_name": ["weddings/*"]}, facts(rel_path="x/weddings.jpg"), False),
    ({"megapixels": {"min": 0.96}}, facts(width=1200, height=800), True),  # min included
    ({"megapixels": {"max": 0.96}}, facts(width=1200, height=800), False),  # max excluded
    ({"latency_budget_ms": {"max": 2000}}, facts(budget=1500), True),
    ({"latency_budget_ms": {"max": 2000}}, facts(budget=None), False),  # no budget: unlimited
    ({"latency_budget_ms": {"min": 2000}}, facts(budget=None), True),
    ({"subject_fraction": {"max": 0.25}}, facts(fraction=None), False),  # unknown never matches
    ({"subject_fraction": {"min": 0.1, "max": 0.25}}, facts(fraction=0.1), True),
    ({}, facts(), True),
]


@pytest.mark.parametrize(("when", "given", "holds"), CONDITION_CASES)
def test_conditions(when: dict, given: ImageFacts, holds: bool) -> None:
    result, seen = evaluate(Conditions.model_validate(when), given)
    assert result is holds
    assert len(seen) == len(when)  # each condition set is described


def test_decide_is_pure() -> None:
    given, rules = facts(fraction=0.05, box=SMALL, budget=2500), shipped("default")
    assert decide(given, rules, "default") == decide(given, rules, "default")


OUTPUT_RULES = """
[[rules]]
name = "catalogue"
when.folder = ["catalog*"]
model = "bshm"
[rules.output]
format = "jpeg"
background = "#ffffff"

[[rules]]
name = "rest"
model = "u2netp"
"""


def test_the_deciding_rules_output_goes_with_the_decision() -> None:
    decision = decide(facts(folder="catalog"), ruleset(OUTPUT_RULES), "t")
    assert decision.rule == "catalogue"
    assert decision.output is not None
    assert decision.to_dict()["output"] == {"format": "jpeg", "background": "#ffffff"}
    assert "output format jpeg, background #ffffff" in decision.trace[0].detail


def test_a_rule_passed_over_does_not_lend_its_output() -> None:
    # The catalogue rule applies but cannot run; the rule that decides sets no output.
    decision = decide(facts(folder="catalog", missing=NO_BSHM), ruleset(OUTPUT_RULES), "t")
    assert (decision.rule, decision.output) == ("rest", None)
    assert decision.to_dict()["output"] is None
