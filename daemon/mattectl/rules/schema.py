"""Rule presets: a strict, typed schema (unknown keys are errors, as in the config).

A preset is an ordered list of rules; the first rule whose conditions all hold, and whose model
can run within the folder's latency budget, decides. Ranges include ``min`` and exclude ``max``,
so ``max = 0.25`` in one rule and ``min = 0.25`` in the next split the values cleanly.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from mattectl.imageio.options import OutputFormat, OutputOptions, parse_colour

# Model names are checked against the catalog that the caller passes in the validation context
# (mattectl.checks passes the backends' catalog); without one, any name passes. "bshm" is accepted
# even where the catalog does not know it yet: a preset stays valid on every installation, and an
# unknown or missing model makes the engine fall back (with the reason) rather than making the
# preset unusable.
MODEL_NAMES = "model_names"  # validation context: the catalog's model names
FUTURE_MODELS = ("bshm",)


def known_models(catalog: Collection[str]) -> tuple[str, ...]:
    """The model names a preset may use, given the catalog's."""
    return tuple(sorted(set(catalog) | set(FUTURE_MODELS)))


def _model_name(value: str, info: ValidationInfo) -> str:
    catalog: Collection[str] | None = (info.context or {}).get(MODEL_NAMES)
    if catalog is None:
        return value
    known = known_models(catalog)
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


def _colour(value: str | None) -> str | None:
    if value is not None:
        parse_colour(value)
    return value


class RuleOutput(_Strict):
    """How a rule's photos are written, over the folder's settings: a key given here replaces
    the folder's (``format`` for ``output_format``), a key left out keeps it."""

    format: OutputFormat | None = Field(
        None, description="png, tiff, webp, jpeg or matte, as the folder's output_format.")
    background: Annotated[str | None, AfterValidator(_colour)] = Field(
        None, description="jpeg only: colour behind the subject, '#rrggbb'.")
    jpeg_quality: int | None = Field(None, ge=1, le=100, description="jpeg only: 1..100.")
    trim: bool | None = Field(None, description="Crop to the subject's bounding box.")
    trim_margin: int | None = Field(
        None, ge=0, description="Pixels kept around the subject when trimming.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("an empty output table: give format, background, jpeg_quality, "
                             "trim or trim_margin, or leave the table out")
        jpeg_only = [k for k in ("background", "jpeg_quality") if k in self.model_fields_set]
        if self.format not in (None, OutputFormat.JPEG) and jpeg_only:
            verb = "apply" if len(jpeg_only) > 1 else "applies"
            raise ValueError(f"{' and '.join(jpeg_only)} {verb} to format = 'jpeg' only, "
                             f"not '{self.format}'")
        if self.trim is False and "trim_margin" in self.model_fields_set:
            raise ValueError("trim_margin needs trim = true (or left out)")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The keys the rule sets, as written in the preset."""
        return self.model_dump(mode="json", exclude_unset=True)

    def apply(self, options: OutputOptions) -> OutputOptions:
        """The folder's ``options`` with this rule's keys in their place."""
        changes = self.model_dump(exclude_unset=True)
        if self.background is not None:
            changes["background"] = parse_colour(self.background)
        return replace(options, **changes)

    def __str__(self) -> str:
        return output_text(self.to_dict())


def output_text(keys: dict[str, Any]) -> str:
    """A rule's output keys as a person reads them, in the schema's order (the job log keeps
    them sorted): ``format jpeg, trim true``."""
    order = list(RuleOutput.model_fields)
    ranked = sorted(keys.items(), key=lambda item: (
        order.index(item[0]) if item[0] in order else len(order), item[0]))
    return ", ".join(f"{key} {str(value).lower() if isinstance(value, bool) else value}"
                     for key, value in ranked)


class SecondOpinion(_Strict):
    """A second model for the photos the first one was unsure of."""

    below: float = Field(gt=0, le=1, description="A confidence (0..1, see `mattectl jobs "
                         "show`) under which the photo is matted again by `model`.")
    model: ModelName = Field(description="The second model, on the whole frame; the alpha "
                                         "with the higher confidence is kept.")


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
    output: RuleOutput | None = Field(
        None, description="How this rule's photos are written, over the folder's output "
                          "settings (those not given here stay the folder's).")
    second_opinion: SecondOpinion | None = Field(
        None, description="When the chosen model's confidence in a photo is under `below`, "
                          "matte it again with `model` and keep the surer alpha.")

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
