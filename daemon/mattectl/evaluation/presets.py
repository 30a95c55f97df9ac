"""A rules preset scored like one model: each photo takes the daemon's whole path (decode,
facts, decision, model, clean edges, encoding), and what is scored is the alpha of the cutout
file a folder with that preset would write."""

from __future__ import annotations

import numpy as np

from mattectl.imageio.matte import decode_matte
from mattectl.matting.pipeline import Cutout, Photo, PhotoPipeline, Recipe
from mattectl.matting.planner import FolderRules

PREFIX = "preset:"


class PresetMatter:
    """What evaluation asks of a matter (``predict_file`` and ``device``). ``last_rule`` says
    which rule and model, with or without a crop, the latest photo took; ``last_cutout`` holds
    its cutout (the file's bytes in ``data``)."""

    def __init__(self, pipeline: PhotoPipeline, preset: str) -> None:
        self.pipeline = pipeline
        self.preset = preset
        self.recipe = Recipe(rules=FolderRules(preset, folder="eval"))
        self.device: str | None = None
        self.last_rule: str | None = None
        self.last_cutout: Cutout | None = None

    @property
    def name(self) -> str:
        return PREFIX + self.preset

    def predict_file(self, data: bytes, name: str) -> np.ndarray:
        self.last_rule = self.last_cutout = None
        cutout = self.pipeline.run(Photo(name, data), self.recipe)
        decision = cutout.decision or {}
        crop = " on a crop" if decision.get("crop") else ""
        sure = "" if cutout.confidence is None else f", confidence {cutout.confidence:.2f}"
        self.last_rule = f"rule {decision.get('rule')}: {cutout.model}{crop}{sure}"
        self.device = cutout.device
        self.last_cutout = cutout
        return decode_matte(cutout.data, name=name)
