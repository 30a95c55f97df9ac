"""The rules at work: gather an image's facts, hand them to the pure ``decide``, and matte as
decided.

This is the edge where the pure rules meet the models: it runs the U²-Net backend's subject
probe, asks the model cache what is available, takes expected latencies from the caller's
source of measured jobs, and runs the chosen model (on a crop, or reusing the probe's mask when
the probe already ran that model on the whole frame). A model that fails to load is marked
unavailable and the decision is taken again without it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mattectl.backends.base import MattingBackend
from mattectl.backends.cache import ModelCache
from mattectl.backends.catalog import MODELS
from mattectl.backends.probe import PROBE_MODELS, SubjectProbe, expand, probe
from mattectl.backends.u2net_processing import Resample
from mattectl.config import WatchConfig
from mattectl.errors import BackendError, ConfigError, ModelUnavailableError, RuleBlockedError
from mattectl.matting.confidence import confidence
from mattectl.matting.cropcheck import CropCheck, matte_crop
from mattectl.matting.latency import LatencyTracker, SampleSource
from mattectl.rules.engine import Decision, decide
from mattectl.rules.facts import Box, ImageFacts, ModelFacts, Subject
from mattectl.rules.presets import Preset, PresetStore, preset_dirs
from mattectl.rules.schema import RuleOutput

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderRules:
    """What a ``[[watch]]`` folder asks of the rules engine."""

    preset: str
    folder: str
    latency_budget_ms: float | None = None

    @classmethod
    def of(cls, watch: WatchConfig) -> FolderRules | None:
        """None for a folder with a fixed ``model`` and no preset."""
        if watch.rules is None:
            return None
        return cls(watch.rules, watch.name, watch.latency_budget_ms)


@dataclass(frozen=True)
class Explained:
    preset: Preset
    facts: ImageFacts
    probe: SubjectProbe | None
    decision: Decision

    def record(self, *, reused_probe: bool = False) -> dict[str, Any]:
        """The decision as the job log keeps it: JSON-ready, with the facts it used."""
        probe = None if self.probe is None else {
            "model": self.probe.model, "ms": round(self.probe.ms, 1), "reused": reused_probe}
        return {**self.decision.to_dict(), **self.preset.describe(),
                "facts": self.facts.to_dict(), "probe": probe}


@dataclass(frozen=True)
class Matte:
    alpha: np.ndarray  # HxW float32 in [0, 1] for the whole frame
    model: str
    device: str
    inference_ms: float  # the chosen model's own time (the probe's, when its mask was reused)
    decision: dict[str, Any]
    model_side: int | None = None  # the model's working size, counted in whole frames (a crop
    # matted at 320 px gives a finer alpha than the whole frame at 320 px); None: full resolution
    output: RuleOutput | None = None  # the deciding rule's output settings, over the folder's
    precision: str | None = None  # the number format the model ran in
    confidence: float | None = None  # 0..1, how sure the model was (matting.confidence)


class RulePlanner:
    def __init__(self, models: ModelCache, presets: PresetStore, latency: LatencyTracker) -> None:
        self.models = models
        self.presets = presets
        self.latency = latency

    @classmethod
    def create(cls, models: ModelCache, rules_dir: Path | None,
               samples: SampleSource | None = None) -> RulePlanner:
        """A planner over the presets of ``rules_dir`` (then the shipped ones), learning
        latencies from ``samples`` (the job log's measured jobs; priors only without it)."""
        return cls(models, PresetStore(preset_dirs(rules_dir), MODELS), LatencyTracker(samples))

    @property
    def resample(self) -> Resample:
        return self.models.options.u2net.resample

    # -- facts and decision ------------------------------------------------------------------------

    def explain(self, rgb: np.ndarray, rules: FolderRules, rel_path: str) -> Explained:
        """Facts, decision and trace for one image; runs the probe if the preset needs it,
        and no other model."""
        preset = self.presets.get(rules.preset)
        found, note = self._probe(rgb) if preset.ruleset.needs_subject else (
            None, f"not probed: preset '{preset.name}' does not look at the subject")
        height, width = rgb.shape[:2]
        device = self._device(found)
        facts = ImageFacts(
            width=width, height=height, folder=rules.folder, rel_path=rel_path, device=device,
            latency_budget_ms=rules.latency_budget_ms,
            subject=_subject(found) if found else None, subject_note=note,
            probe_model=found.model if found else None,
            models=self._model_facts(preset, device, width * height / 1e6))
        return Explained(preset, facts, found, decide(facts, preset.ruleset, preset.name))

    def _probe(self, rgb: np.ndarray) -> tuple[SubjectProbe | None, str]:
        name = next((m for m in PROBE_MODELS if self.models.availability(m).ok), None)
        if name is None:
            return None, f"no probe model available (tried {', '.join(PROBE_MODELS)})"
        try:
            backend = self.models.get(name)
            backend.load()
            found = probe(backend, rgb, self.resample)
        except (ModelUnavailableError, BackendError) as exc:
            logger.warning("subject probe with %s failed: %s", name, exc)
            return None, f"probe with {name} failed: {exc}"
        return found, f"probed with {name} in {found.ms:.0f} ms"

    def _device(self, probe: SubjectProbe | None) -> str:
        """Where models are expected to run: where the probe ran, else where any model is
        loaded, else the configured device ('cpu' until something has run, for 'auto')."""
        loaded = self.models.loaded()
        if probe is not None and probe.model in loaded:
            return loaded[probe.model]
        configured = self.models.options.device
        return next(iter(loaded.values()), "cpu" if configured == "auto" else configured)

    def _model_facts(self, preset: Preset, device: str, megapixels: float
                     ) -> dict[str, ModelFacts]:
        latency = self.latency.current()
        loaded = self.models.loaded()
        out = {}
        for name in dict.fromkeys([*preset.ruleset.models, *MODELS]):
            ok, reason = self.availability(name)
            estimate = latency.expected(name, loaded.get(name, device), megapixels)
            out[name] = ModelFacts(ok, reason, estimate.ms, estimate.source)
        return out

    def availability(self, name: str) -> tuple[bool, str]:
        if name not in MODELS:
            return False, (f"model '{name}' is not known to this mattectl (no backend for it "
                           "is installed)")
        found = self.models.availability(name)
        return found.ok, found.reason

    def folder_problem(self, preset_name: str) -> str | None:
        """Why a folder using this preset cannot process anything (no model at all can run,
        or the preset cannot be read); None when it can."""
        try:
            preset = self.presets.get(preset_name)
        except ConfigError as exc:
            return str(exc)
        names = list(dict.fromkeys([*preset.ruleset.models, *MODELS]))
        if any(self.availability(name)[0] for name in names):
            return None
        return "no model can run: " + "; ".join(self.availability(n)[1] for n in names)

    # -- matting -----------------------------------------------------------------------------------

    def matte(self, rgb: np.ndarray, rules: FolderRules, rel_path: str) -> Matte:
        """Decide and run the chosen model. Raises :class:`RuleBlockedError` when a required
        rule cannot run; a model that fails to load is dropped and the decision taken again."""
        explained = self.explain(rgb, rules, rel_path)
        for _ in range(len(explained.facts.models) + 1):
            decision = explained.decision
            if decision.blocked or decision.model is None:
                raise RuleBlockedError(decision.blocked or "no model", explained.record())
            try:
                return self._second_opinion(rgb, explained, self.run(rgb, explained))
            except ModelUnavailableError as exc:
                logger.warning("%s: %s cannot run (%s); deciding again without it", rel_path,
                               decision.model, exc)
                facts = explained.facts.with_unavailable(decision.model, str(exc))
                explained = Explained(explained.preset, facts, explained.probe,
                                      decide(facts, explained.preset.ruleset,
                                             explained.preset.name))
        raise AssertionError("unreachable: each round drops one model")

    def run(self, rgb: np.ndarray, explained: Explained) -> Matte:
        """Matte as ``explained`` decided (on a crop, reusing the probe's mask, or on the whole
        frame). Raises ModelUnavailableError when the chosen model cannot load."""
        decision, probe = explained.decision, explained.probe
        assert decision.model is not None
        backend = self.models.get(decision.model)
        device = backend.load()  # a first load is not inference time
        height, width = rgb.shape[:2]
        start = time.perf_counter()
        reused = False
        box, checked = decision.crop, None
        if box is not None:
            alpha, checked = self._matte_crop(rgb, box, backend, probe)
            box = checked.box
        elif probe is not None and probe.model == decision.model:
            alpha = expand(probe.mask, width, height, self.resample)
            reused = True
        else:
            alpha = backend.predict(rgb)
        ms = (time.perf_counter() - start) * 1000.0 + (probe.ms if reused and probe else 0.0)
        record = explained.record(reused_probe=reused)
        if checked is not None:
            record["crop_check"] = checked.record()
        # The probe is a second, independent view of the frame unless it is this very alpha.
        second = probe.mask if probe is not None and not reused else None
        return Matte(alpha, decision.model, device, ms, record,
                     _model_side(backend.spec.input_size, box, width, height),
                     decision.output, backend.precision, confidence(alpha, second))

    def _second_opinion(self, rgb: np.ndarray, explained: Explained, first: Matte) -> Matte:
        """The rule's second model on the whole frame, when the first was unsure of the photo
        (``second_opinion`` in the rule); the surer of the two alphas is kept. A second model
        that cannot run leaves the first alpha, with the reason recorded."""
        wanted = explained.decision.second_opinion
        if wanted is None or first.confidence is None or first.confidence >= wanted.below:
            return first
        record = {"model": wanted.model, "below": wanted.below, "first": first.confidence}
        ok, reason = self.availability(wanted.model)
        if wanted.model == first.model or not ok:
            note = "the same model" if ok else reason
            return replace(first, decision={**first.decision, "second_opinion": {
                **record, "kept": "first", "note": note}})
        backend = self.models.get(wanted.model)
        try:
            device = backend.load()
            start = time.perf_counter()
            alpha = backend.predict(rgb)
            ms = (time.perf_counter() - start) * 1000.0
        except (ModelUnavailableError, BackendError) as exc:
            logger.warning("second opinion from %s failed: %s", wanted.model, exc)
            return replace(first, decision={**first.decision, "second_opinion": {
                **record, "kept": "first", "note": str(exc)}})
        probe = explained.probe
        second = confidence(alpha, probe.mask if probe is not None else None)
        record.update(second=second, ms=round(ms, 1))
        if second <= first.confidence:
            return replace(first, decision={**first.decision, "second_opinion": {
                **record, "kept": "first"}})
        return Matte(alpha, wanted.model, device, first.inference_ms + ms,
                     {**first.decision, "second_opinion": {**record, "kept": "second"}},
                     backend.spec.input_size, first.output, backend.precision, second)

    def _matte_crop(self, rgb: np.ndarray, box: Box, backend: MattingBackend,
                    probe: SubjectProbe | None) -> tuple[np.ndarray, CropCheck]:
        """The crop pass, checked so that it never cuts the subject (see matting.cropcheck);
        the probe's mask is the full-frame pass it is merged with."""
        height, width = rgb.shape[:2]
        if probe is None:  # a crop comes from the probe's box; without it, nothing to merge
            full = np.zeros((height, width), np.float32)
        else:
            full = expand(probe.mask, width, height, self.resample)

        # The whole frame, when the crop does not pay, is a real pass of the model: the
        # probe's mask, made from an 8-bit shrunk frame, can differ from it on hard photos.
        return matte_crop(backend.predict, rgb, box, full, lambda: backend.predict(rgb))


def _subject(found: SubjectProbe) -> Subject:
    return Subject(found.fraction, Box(*found.box) if found.box else None)


def _model_side(input_size: int | None, crop: Box | None, width: int, height: int
                ) -> int | None:
    if input_size is None or crop is None:
        return input_size
    return round(input_size * max(width, height) / max(crop.width, crop.height))
