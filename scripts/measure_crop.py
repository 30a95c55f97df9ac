#!/usr/bin/env python3
"""Crop to the subject, measured: real photos made small, matted with and without the crop.

Each photo of ../shared/data/u2net_official/test_human_images is pasted into a canvas four times
its width and height, at column 1 and row 2 of a 4x4 grid, over a background made from the photo
itself (enlarged and defocused, as a wide shot of the same scene would look). With
``--edge soft`` (the default) the photo's border fades into that background over a tenth of its
size; ``--edge hard`` pastes the rectangle as it is. Photos are first shrunk to at most
``--max-side`` pixels (the canvas of a 2500-pixel photo would be 67 MP).

mattectl's own rules engine then mattes the photo and the canvas through the real u2netp
backend, with two presets written for the run: ``nocrop`` (one rule: u2netp on the whole frame,
which is the probe's own mask) and ``crop`` (u2netp with crop_to_subject and ``--margin``).
Each alpha is compared with the published u2net_human_seg alpha of the photo (IoU at alpha 0.5;
on the canvas the reference is zero outside the photo, so alpha spilled onto the background
counts against it).

Prints, per photo, the full-frame IoU, the canvas IoU without and with the crop, and the share
of the full-frame IoU the crop recovers; then the means. Run from the repository root:

    PYTHONPATH=daemon python scripts/measure_crop.py [--edge soft|hard] [--margin 0.1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from mattectl.backends.cache import ModelCache
from mattectl.backends.probe import expand
from mattectl.config import ModelsConfig
from mattectl.matting.planner import FolderRules, RulePlanner

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "u2net_official"
PHOTOS = DATA / "test_human_images"
REFERENCES = DATA / "u2net_test_human_images_results"
MODELS = REPO.parent / "shared" / "models"
PRESETS = {
    "nocrop": '[[rules]]\nname = "whole-frame"\nmodel = "u2netp"\n',
    "crop": '[[rules]]\nname = "crop"\nmodel = "u2netp"\ncrop_to_subject = true\n'
            'crop_margin = {margin}\n',
}


@dataclass(frozen=True)
class Result:
    photo: str
    full: float  # IoU of the alpha of the photo itself
    nocrop: float  # IoU on the canvas, whole frame
    crop: float  # IoU on the canvas, crop to subject
    cropped: bool  # whether the engine did crop (it skips crops that keep most of the frame)

    @property
    def recovered(self) -> float:
        return self.crop / self.full if self.full else 0.0


def load_photo(path: Path, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo (RGB uint8) and its reference alpha (float32), shrunk to ``max_side``."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1:
        width, height = round(width * scale), round(height * scale)
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    ref = Image.open(REFERENCES / f"{path.stem}.png").convert("L")
    ref = ref.resize((width, height), Image.Resampling.BILINEAR)
    return rgb, np.asarray(ref, dtype=np.float32) / 255


def make_background(rgb: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The photo's scene without the person, four times larger and out of focus: the person is
    painted out (at a quarter of the size, where inpainting is quick), then enlarged and
    blurred, so that no giant blurred person competes with the real one."""
    height, width = rgb.shape[:2]
    small_size = (max(8, width // 4), max(8, height // 4))
    small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA)
    person = (cv2.resize(ref, small_size, interpolation=cv2.INTER_AREA) > 0.02).astype(np.uint8)
    person = cv2.dilate(person, np.ones((5, 5), np.uint8))
    scene = cv2.inpaint(small, person, 5, cv2.INPAINT_TELEA)
    # Defocus at the small size (a blur of width/10 on the 4x canvas is width/160 here), then
    # enlarge: the same look as blurring the canvas, at a fraction of the cost.
    scene = cv2.GaussianBlur(scene, (0, 0), sigmaX=max(0.5, width / 160))
    return cv2.resize(scene, (4 * width, 4 * height), interpolation=cv2.INTER_LINEAR)


def make_canvas(rgb: np.ndarray, ref: np.ndarray, edge: str
                ) -> tuple[np.ndarray, tuple[int, int]]:
    """The photo on a 4x canvas over :func:`make_background`; returns (canvas, (x0, y0)).

    The photo's pixels are kept as they are. With ``soft`` edges its border pixels are
    stretched outwards and fade into the background over a tenth of its size, so that no sharp
    rectangle stands out (a model would take the rectangle for the subject).
    """
    height, width = rgb.shape[:2]
    background = make_background(rgb, ref)
    x0, y0 = width, 2 * height
    canvas = background.copy()
    if edge == "hard":
        canvas[y0:y0 + height, x0:x0 + width] = rgb
        return canvas, (x0, y0)
    band = max(1, round(0.1 * min(width, height)))
    grown = cv2.copyMakeBorder(rgb, band, band, band, band, cv2.BORDER_REPLICATE)
    yy, xx = np.mgrid[-band:height + band, -band:width + band].astype(np.float32)
    outside = np.maximum(np.maximum(-xx - 0.5, xx + 0.5 - width),
                         np.maximum(-yy - 0.5, yy + 0.5 - height))
    weight = 1 - np.clip(outside / band, 0, 1)
    weight = (weight * weight * (3 - 2 * weight))[..., None]  # smoothstep: 1 on the photo
    region = (slice(y0 - band, y0 + height + band), slice(x0 - band, x0 + width + band))
    canvas[region] = (weight * grown + (1 - weight) * canvas[region] + 0.5).astype(np.uint8)
    return canvas, (x0, y0)


def iou(alpha: np.ndarray, reference: np.ndarray) -> float:
    a, b = alpha >= 0.5, reference >= 0.5
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def make_planner(models_dir: Path, rules_dir: Path, margin: float) -> RulePlanner:
    rules_dir.mkdir(parents=True, exist_ok=True)
    for name, text in PRESETS.items():
        (rules_dir / f"{name}.toml").write_text(text.format(margin=margin))
    models = ModelCache(ModelsConfig(), models_dir)
    return RulePlanner.create(models, rules_dir, None)


def measure(planner: RulePlanner, photo: Path, *, edge: str, max_side: int) -> Result:
    rgb, ref = load_photo(photo, max_side)
    canvas, (x0, y0) = make_canvas(rgb, ref, edge)
    ref_canvas = np.zeros(canvas.shape[:2], dtype=np.float32)
    ref_canvas[y0:y0 + ref.shape[0], x0:x0 + ref.shape[1]] = ref
    full = planner.matte(rgb, FolderRules("nocrop", "measure"), photo.name)
    # One probe serves both: its mask is what the nocrop preset's cutout is (the planner reuses
    # it), and the crop preset's decision is taken on it.
    explained = planner.explain(canvas, FolderRules("crop", "measure"), photo.name)
    assert explained.probe is not None
    nocrop = expand(explained.probe.mask, canvas.shape[1], canvas.shape[0], planner.resample)
    crop = planner.run(canvas, explained)
    return Result(photo.name, iou(full.alpha, ref), iou(nocrop, ref_canvas),
                  iou(crop.alpha, ref_canvas), crop.decision["crop"] is not None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=MODELS, help="folder with u2netp/")
    parser.add_argument("--edge", choices=("soft", "hard"), default="soft")
    parser.add_argument("--margin", type=float, default=0.1)
    parser.add_argument("--max-side", type=int, default=1000)
    parser.add_argument("--photos", nargs="*", help="file names (default: all)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    photos = sorted(PHOTOS.iterdir()) if not args.photos else [PHOTOS / p for p in args.photos]
    with tempfile.TemporaryDirectory() as tmp:
        planner = make_planner(args.models, Path(tmp), args.margin)
        print(f"edge={args.edge} margin={args.margin} max_side={args.max_side}")
        print(f"{'photo':<44} {'full':>6} {'nocrop':>7} {'crop':>6} {'crop/full':>9}")
        results = []
        for photo in photos:
            r = measure(planner, photo, edge=args.edge, max_side=args.max_side)
            results.append(r)
            print(f"{r.photo[:44]:<44} {r.full:6.3f} {r.nocrop:7.3f} {r.crop:6.3f} "
                  f"{r.recovered:9.3f}{'' if r.cropped else '  (not cropped)'}", flush=True)
    means = {k: statistics.mean(getattr(r, k) for r in results)
             for k in ("full", "nocrop", "crop", "recovered")}
    print(f"{'mean of ' + str(len(results)) + ' photos':<44} {means['full']:6.3f} "
          f"{means['nocrop']:7.3f} {means['crop']:6.3f} {means['recovered']:9.3f}")
    print(f"without the crop: {means['nocrop'] / means['full']:.3f} of the full-frame IoU; "
          f"with it: {means['crop'] / means['full']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "results": [asdict(r) for r in results],
                                         "means": means}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
