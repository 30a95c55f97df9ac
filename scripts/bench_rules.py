#!/usr/bin/env python3
"""What the rules engine costs per photo, against a folder with a fixed model.

For each photo, interleaved over ``--rounds`` rounds (so both sides see the same machine load),
times: ``fixed`` (the u2netp backend on the whole photo, what a `model = "u2netp"` folder runs),
``live`` (the planner with the shipped live preset: probe, decide, cutout) and ``decide`` (the
pure engine alone, on the facts of that photo). Prints medians and the ratio live/fixed. The
photos: a portrait (the probe's mask is reused: no second pass) and the same dancers photo pasted
small into a wide frame (a second pass on a crop). Run from the repository root:

    PYTHONPATH=daemon python scripts/bench_rules.py [--rounds 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mattectl.backends.cache import ModelCache
from mattectl.config import ModelsConfig
from mattectl.matting.planner import FolderRules, RulePlanner
from mattectl.rules.engine import decide

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "u2net_official" / "test_human_images"
MODELS = REPO.parent / "shared" / "models"


def photos() -> dict[str, np.ndarray]:
    portrait = np.asarray(Image.open(PHOTOS / "photo-1552374196-c4e7ffc6e126.jpeg")
                          .convert("RGB"))
    dancers = np.asarray(Image.open(PHOTOS / "Two_dancers.jpg").convert("RGB"))
    h, w = dancers.shape[:2]
    wide = np.full((4 * h, 4 * w, 3), (120, 130, 140), np.uint8)
    wide[2 * h:3 * h, w:2 * w] = dancers
    return {"portrait 1000x1500": portrait, f"small subject {4 * w}x{4 * h}": wide}


def ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = ModelCache(ModelsConfig(), MODELS)
    planner = RulePlanner.create(models, None, None)
    backend = models.get("u2netp")
    backend.load()
    rules = FolderRules("live", "bench")
    ruleset = planner.presets.get("live").ruleset
    print(f"torch threads {args.threads}, {args.rounds} rounds (medians; the machine may be "
          "shared: compare the ratio, not the milliseconds)")
    for name, rgb in photos().items():
        planner.matte(rgb, rules, name)  # warm-up
        facts = planner.explain(rgb, rules, name).facts
        times: dict[str, list[float]] = {"fixed": [], "live": [], "decide": []}
        for _ in range(args.rounds):
            times["fixed"].append(ms(lambda rgb=rgb: backend.predict(rgb)))
            times["live"].append(ms(lambda rgb=rgb, name=name: planner.matte(rgb, rules, name)))
            times["decide"].append(ms(lambda facts=facts: decide(facts, ruleset, "live")))
        median = {k: statistics.median(v) for k, v in times.items()}
        decision = planner.matte(rgb, rules, name).decision
        how = "crop" if decision["crop"] else ("probe reused" if decision["probe"]["reused"]
                                               else "second pass")
        print(f"{name:<28} fixed {median['fixed']:7.0f} ms   live {median['live']:7.0f} ms "
              f"({how})   ratio {median['live'] / median['fixed']:.2f}   "
              f"decide() {median['decide']:.3f} ms")
    models.unload_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
