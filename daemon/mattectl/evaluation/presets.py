"""A rules preset scored like one model: each photo is matted as the preset decides."""

from __future__ import annotations

import numpy as np

from mattectl.rules.planner import FolderRules, RulePlanner

PREFIX = "preset:"


class PresetMatter:
    """Duck-types the part of :class:`~mattectl.backends.base.MattingBackend` that evaluation
    uses (``predict`` and ``device``). ``last_rule`` says which rule and model, with or without a
    crop, the latest photo took."""

    def __init__(self, planner: RulePlanner, preset: str) -> None:
        self.planner = planner
        self.preset = preset
        self.rules = FolderRules(preset, folder="eval")
        self.device: str | None = None
        self.last_rule: str | None = None

    @property
    def name(self) -> str:
        return PREFIX + self.preset

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        self.last_rule = None
        matte = self.planner.matte(rgb, self.rules, "eval")
        crop = " on a crop" if matte.decision.get("crop") else ""
        self.last_rule = f"rule {matte.decision.get('rule')}: {matte.model}{crop}"
        self.device = matte.device
        return matte.alpha
