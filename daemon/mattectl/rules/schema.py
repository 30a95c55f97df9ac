"""Rule presets: a strict, typed schema (unknown keys are errors, as in the config).

A preset is an ordered list of rules; the first rule whose conditions all hold, and whose model
can run within the folder's latency budget, decides. Ranges include ``min`` and exclude ``max``,
so ``max = 0.25`` in one rule and ``min = 0.25`` in the next split the values cleanly.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# Models a preset may name. "bshm" is listed even where the catalog does not know it yet: a
# preset stays valid on every installation, and an unknown or missing model makes the engine fall
# back (with the reason) rather than making the preset unusable.
FUTURE_MODELS = ("bshm",)


def known_models() -> tuple[str, ...]:
    from mattectl.backends.catalog import MODELS

    return tuple(sorted(set(MODELS) | set(FUTURE_MODELS)))


def _model_name(value: str) -> str:
    known = known_models()
    if value not in known:
        raise ValueError(f"unknown model '{value}' (known: {', '.join(known)})")
    return value


ModelName = Annotated[str, AfterValidator(_model_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    """``min <= value < max``; either end may be left out."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value < self.max)

    def __str__(self) -> str:
        parts = ([] if self.min is None else [f">= {self.min:g}"]) + (
            [] if self.max is None else [f"< {self.max:g}"])
        return " and ".join(parts)


def _fraction_range(value: Range | None) -> Range | None:
    if value is not None and any(v is not None and not 0 <= v <= 1
                                 for v in (value.min, value.max)):
        raise ValueError("subject fractions lie between 0 and 1")
    return value


def _non_negative_range(value: Range | None) -> Range | None:
    if value is not None and any(v is not None and v < 0 for v in (value.min, value.max)):
        raise ValueError("must not be negative")
    return value


def _patterns(value: list[str] | None) -> list[str] | None:
    if value is not None and (not value or any(not p.strip() for p in value)):
        raise ValueError("list one or more glob patterns, e.g. ['*_group*']")
    return value


Patterns = Annotated[list[str] | None, AfterValidator(_patterns)]


class Conditions(_Strict):
    """What must hold for a rule to apply. Every condition given must hold; none means always."""

    subject_fraction: Annotated[Range | None, AfterValidator(_fraction_range)] = Field(
        None, description="Share of the frame the subject covers (0..1), from the probe.")
    megapixels: Annotated[Range | None, AfterValidator(_non_negative_range)] = Field(
        None, description="Image size in millions of pixels.")
    latency_budget_ms: Annotated[Range | None, AfterValidator(_non_negative_range)] = Field(
        None, description="The folder's latency budget; a folder without one counts as unlimited.")
    folder: Patterns = Field(None, description="Glob patterns on the [[watch]] folder's name.")
    file_name: Patterns = Field(
        None, description="Glob patterns on the file name (case-insensitive); a pattern with a "
                          "'/' is matched against the path inside the drop folder.")

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)


def glob_matches(patterns: list[str], folder_or_name: str, rel_path: str | None = None) -> bool:
    """Case-insensitive glob match; patterns holding '/' are matched against ``rel_path``."""
    for pattern in patterns:
        target = rel_path if rel_path is not None and "/" in pattern else folder_or_name
        if fnmatchcase(target.lower(), pattern.lower()):
            return True
    return False


class Rule(_Strict):
    name: str = Field(description="Unique within the preset; shown in decisions.")
    description: str = Field("", description="Why this rule exists; shown in decisions.")
    when: Conditions = Field(default_factory=Conditions)
    model: ModelName = Field(description="The model this rule wants.")
    fallback: list[ModelName] = Field(
        default_factory=list,
        description="Models tried in order when `model` cannot run here or exceeds the budget.")
    crop_to_subject: bool = Field(
        False, description="Matte a crop around the probed subject and paste the alpha back.")
    crop_margin: float = Field(
        0.1, ge=0, le=1, description="Margin around the subject box, as a share of its size.")
    required: bool = Field(
        False, description="This rule's models or none: when none can run, the job waits and "
                           "fails rather than falling back to a later rule; the budget is "
                           "ignored.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", self.name):
            raise ValueError(f"rule name '{self.name}': use letters, digits, '-', '_' and '.'")
        candidates = self.candidates
        if len(set(candidates)) != len(candidates):
            raise ValueError("a model is listed twice in model and fallback")
        if "crop_margin" in self.model_fields_set and not self.crop_to_subject:
            raise ValueError("crop_margin needs crop_to_subject = true")
        return self

    @property
    def candidates(self) -> tuple[str, ...]:
        return (self.model, *self.fallback)


class RuleSet(_Strict):
    description: str = Field("", description="What the preset is for.")
    rules: list[Rule] = Field(min_length=1, description="Ordered; the first usable rule wins.")

    @model_validator(mode="after")
    def _well_formed(self) -> Self:
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique: {', '.join(duplicates)}")
        if not self.rules[-1].when.empty:
            raise ValueError(f"the last rule ('{self.rules[-1].name}') must have no conditions, "
                             "so that every photo matches a rule")
        return self

    @property
    def needs_subject(self) -> bool:
        """Whether any rule looks at the subject (then each photo is probed first)."""
        return any(rule.crop_to_subject or rule.when.subject_fraction is not None
                   for rule in self.rules)

    @property
    def models(self) -> tuple[str, ...]:
        """Every model the preset may choose, in order of first mention."""
        return tuple(dict.fromkeys(m for rule in self.rules for m in rule.candidates))
