#!/usr/bin/env python3
"""Crop to subject against the whole frame, on people of every size (see
mattectl.evaluation.crops): a rules preset's IoU against one model on the whole frame, with the
share of photos that lose more than 0.05 IoU, per split (tune / held-out) and per scale.

Subjects: the 19 people of ../shared/data/u2net_official/test_human_images with the published
u2net_human_seg mattes; backgrounds: the standard six of mattectl.evaluation.dataset. Run from
the repository root:

    PYTHONPATH=daemon .venv/bin/python scripts/measure_crop_safety.py \\
        [--split held-out] [--per-subject 2] [--preset default] [--baseline u2netp]

``--unchecked`` runs the crop as it was before the crop check (one pass on the probe's box,
pasted into an empty frame), for comparison. The model passes the preset ran per photo (probe,
crop passes, whole-frame fallbacks) are counted: the crop check's extra latency is the
difference between a run with and one without ``--unchecked``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mattectl import config
from mattectl.backends.base import MattingBackend
from mattectl.backends.cache import ModelCache, closing_models
from mattectl.evaluation import crops, dataset
from mattectl.matting import cropcheck
from mattectl.matting.planner import RulePlanner
from mattectl.rules.facts import Box

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MODELS = REPO.parent / "shared" / "models"


def unchecked(predict: cropcheck.Predict, rgb: np.ndarray, box: Box, full: np.ndarray,
              whole: object) -> tuple[np.ndarray, cropcheck.CropCheck]:
    """The crop as it was before the check: one pass on the probe's box, pasted."""
    alpha = np.zeros(rgb.shape[:2], np.float32)
    alpha[box.y0:box.y1, box.x0:box.x1] = predict(cropcheck.cut(rgb, box))
    return alpha, cropcheck.CropCheck(box, 1, ((),))


def count_passes() -> list[int]:
    """Count every model pass from now on (one counter for all backends)."""
    count = [0]
    predict = MattingBackend.predict

    def counted(self: MattingBackend, rgb: np.ndarray) -> np.ndarray:
        count[0] += 1
        return predict(self, rgb)

    MattingBackend.predict = counted  # type: ignore[method-assign]
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--models", type=Path, default=MODELS, help="folder with u2netp/")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--baseline", default="u2netp", help="model on the whole frame")
    parser.add_argument("--split", choices=("tune", "held-out", "all"), default="all")
    parser.add_argument("--per-subject", type=int, default=2, help="backgrounds per subject")
    parser.add_argument("--scales", default=",".join(f"{s:g}" for s in crops.SCALES))
    parser.add_argument("--limit", type=int, default=None, help="first N subjects of the split")
    parser.add_argument("--unchecked", action="store_true", help="the crop without its check")
    parser.add_argument("--worst", type=int, default=8, help="list the N largest drops")
    parser.add_argument("--json", type=Path, help="also write every result here")
    args = parser.parse_args()
    if args.unchecked:
        import mattectl.matting.planner as planner_module
        planner_module.matte_crop = unchecked  # type: ignore[assignment]

    photos = args.data / dataset.STANDARD_PHOTOS
    subjects = [s for s in dataset.subjects_from_mattes(photos, args.data / dataset.STANDARD_MATTES)
                if args.split == "all" or crops.split_of(s.name) == args.split][:args.limit]
    backgrounds = dataset.standard_backgrounds(args.data)
    scales = [float(s) for s in args.scales.split(",")]
    settings = config.parse({"models": {"dir": str(args.models)}})
    models = ModelCache(settings.models, settings.models_dir)
    planner = RulePlanner.create(models, None)
    results, passes, count = [], [], count_passes()
    with closing_models(models):
        for item in crops.frames(subjects, backgrounds, scales, args.per_subject):
            before = count[0]
            results.append(crops.measure(planner, args.preset, args.baseline, item))
            passes.append(count[0] - before - 1)  # less the baseline's one whole-frame pass
            print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"preset {args.preset}{' (crop unchecked)' if args.unchecked else ''} against "
          f"{args.baseline} on the whole frame; {len(subjects)} subjects x {args.per_subject} "
          f"backgrounds x {len(scales)} scales; IoU at alpha 0.5; resample "
          f"{settings.models.u2net.resample}")
    print(crops.table(results, args.preset, args.baseline))
    cropped = [n for n, r in zip(passes, results, strict=True) if r.cropped]
    print(f"\nmodel passes per photo of the preset: mean {np.mean(passes):.3f} over "
          f"{len(passes)} photos; {np.mean(cropped) if cropped else 0:.3f} over the {len(cropped)} "
          f"cropped ones (max {max(passes)})")
    print("\nconfidence against error (negative: a low confidence flags a bad alpha):")
    for split in ("tune", "held-out", "all"):
        chosen = [r for r in results if split in ("all", r.split)]
        values = crops.correlations(chosen)
        if values:
            print(f"  {split:<9} n={len(chosen):<4} " + ", ".join(
                f"{k} {v:+.3f}" for k, v in values.items()))
    print("\nlargest drops:")
    for r in sorted(results, key=lambda r: r.delta)[:args.worst]:
        gave_up = ", whole frame" if r.whole_frame else ""
        print(f"  {r.delta:+.3f}  {r.name}  ({r.split}; preset {r.preset_iou:.3f}, whole "
              f"{r.whole_iou:.3f}; crop passes {r.rounds}{gave_up})")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
