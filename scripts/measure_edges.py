#!/usr/bin/env python3
"""Measure mattectl's clean-edge steps against known truth (numbers for the README / report).

Truth: rembg's published u2netp cutouts in ../shared/data/rembg_u2netp/*.u2netp.png give a
foreground colour F (their RGB) and an alpha a. Each is composited over backgrounds of very
different colours, I = a F + (1 - a) B, rounded to 8 bits as a photo would be. Then:

- colour: F recovered from I and a, before (F = I, what a plain cutout stores) and after
  ``estimate_foreground``; error where the subject is visible (a > 0.02, alpha-weighted) and the
  error of the cutout composited on a new background (the halo a retoucher sees). rembg's F is
  the original photo, old background included, in semi-transparent pixels; "halo'" repeats the
  halo measure with F' = the solid subject's colours spread outwards, the truth of a subject
  whose edges carry its own colour (hair);
- alpha: a reduced to the model's 320x320 and enlarged again (what U2-Net's output goes
  through), before and after ``refine_alpha`` with I as guide. rembg's alpha is itself smooth at
  320x320, so a second truth with crisp edges (its 0.5 contour, antialiased at full
  resolution) shows what refinement does where the photo has real edges.

Errors are mean absolute differences in 8-bit levels (0..255) over the edge band (pixels within
the enlargement factor of a semi-transparent or edge pixel of the truth).

Usage: daemon on PYTHONPATH, from the repo root:
    PYTHONPATH=daemon python scripts/measure_edges.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from mattectl.imageio.edges import estimate_foreground, refine_alpha

BACKGROUNDS = {"black": (0, 0, 0), "white": (255, 255, 255), "green": (0, 177, 64),
               "magenta": (255, 0, 255), "blue": (0, 71, 187)}
MODEL_SIDE = 320


def composite(fg: np.ndarray, alpha: np.ndarray, bg: tuple[int, int, int]) -> np.ndarray:
    a = alpha[:, :, None]
    out = fg * a + np.asarray(bg, np.float32) / 255 * (1 - a)
    return np.round(out * 255) / 255  # an 8-bit photo


def crisp(alpha: np.ndarray) -> np.ndarray:
    """The 0.5 contour of ``alpha`` with 4x4 supersampled antialiasing: a truth with real edges."""
    h, w = alpha.shape
    big = cv2.resize(alpha, (w * 4, h * 4), interpolation=cv2.INTER_CUBIC) > 0.5
    return cv2.resize(big.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)


def extended(fg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A foreground whose semi-transparent pixels carry the subject's colour: the colours of the
    solid subject (alpha >= 0.95) spread outwards. rembg's RGB there is the original photo,
    old background included, which penalises any estimate that removes it."""
    solid = (alpha >= 0.95).astype(np.float32)
    out = fg.copy()
    for radius in (4, 16, 64):
        weight = cv2.blur(solid, (2 * radius + 1,) * 2)
        spread = cv2.blur(fg * solid[:, :, None], (2 * radius + 1,) * 2) / (weight[:, :, None]
                                                                           + 1e-6)
        fill = (solid == 0) & (weight > 1e-3)
        out[fill] = spread[fill]
        solid = np.maximum(solid, fill.astype(np.float32))
    return out


def through_model_resolution(alpha: np.ndarray) -> np.ndarray:
    """Reduce to 320x320, round to 8 bits, enlarge bilinearly: U2-Net's output path."""
    h, w = alpha.shape
    small = cv2.resize(alpha, (MODEL_SIDE, MODEL_SIDE), interpolation=cv2.INTER_AREA)
    small = Image.fromarray(np.round(small * 255).astype(np.uint8), "L")
    return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR), np.float32) / 255


def band(alpha: np.ndarray, width: int) -> np.ndarray:
    semi = (alpha > 0.01) & (alpha < 0.99)
    edges = cv2.morphologyEx((alpha > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT,
                             np.ones((3, 3), np.uint8)) > 0
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    return cv2.dilate((semi | edges).astype(np.uint8), kernel) > 0


def mae(a: np.ndarray, b: np.ndarray, where: np.ndarray, weight: np.ndarray | None = None) -> float:
    diff = np.abs(a - b)
    if diff.ndim == 3:
        diff = diff.mean(axis=2)
    w = where.astype(np.float32) if weight is None else where * weight
    return float((diff * w).sum() / max(w.sum(), 1e-9) * 255)


def measure_case(fg: np.ndarray, alpha: np.ndarray, bg_name: str) -> dict[str, float]:
    h, w = alpha.shape
    upscale = max(h, w) / MODEL_SIDE
    image = composite(fg, alpha, BACKGROUNDS[bg_name]).astype(np.float32)
    visible = alpha > 0.02
    edge = band(alpha, max(1, round(upscale)))
    new_bg = (255, 255, 255) if bg_name != "white" else (0, 0, 0)
    truth_on_new = composite(fg, alpha, new_bg)
    estimated = estimate_foreground(image, alpha)
    row = {
        "F before": mae(image, fg, visible, alpha),
        "F after": mae(estimated, fg, visible, alpha),
        "halo before": mae(composite(image, alpha, new_bg), truth_on_new, edge),
        "halo after": mae(composite(estimated, alpha, new_bg), truth_on_new, edge),
    }
    subject = extended(fg, alpha)
    image = composite(subject, alpha, BACKGROUNDS[bg_name]).astype(np.float32)
    truth_on_new = composite(subject, alpha, new_bg)
    estimated = estimate_foreground(image, alpha)
    row["halo' before"] = mae(composite(image, alpha, new_bg), truth_on_new, edge)
    row["halo' after"] = mae(composite(estimated, alpha, new_bg), truth_on_new, edge)
    for truth_name, truth in (("soft", alpha), ("crisp", crisp(alpha))):
        photo = composite(fg, truth, BACKGROUNDS[bg_name]).astype(np.float32)
        up = through_model_resolution(truth)
        refined = refine_alpha(photo, up, upscale)
        edge = band(truth, max(1, round(upscale)))
        row[f"a {truth_name} before"] = mae(up, truth, edge)
        row[f"a {truth_name} after"] = mae(refined, truth, edge)
    return row


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rgba = np.asarray(Image.open(path).convert("RGBA"), np.float32) / 255
    return np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3])


def realistic(width: int, height: int, data: Path) -> tuple[np.ndarray, np.ndarray]:
    """A real photo enlarged to ``width`` x ``height`` and an alpha shaped like U2-Net's output
    (a soft subject enlarged from 320x320), for timing."""
    photo = Image.open(data / "u2net_official" / "test_images" / "bike.jpg").convert("RGB")
    image = np.asarray(photo.resize((width, height), Image.Resampling.BILINEAR), np.float32) / 255
    small = np.zeros((MODEL_SIDE, MODEL_SIDE), np.float32)
    cv2.ellipse(small, (160, 200), (90, 150), 0, 0, 360, 1.0, -1)
    small = cv2.GaussianBlur(small, (0, 0), 2.0)
    return image, cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def timing(repeats: int, data: Path) -> None:
    for label, (w, h) in (("1080p", (1920, 1080)), ("24 MP", (6000, 4000))):
        image, alpha = realistic(w, h, data)
        for name in ("estimate_foreground", "refine_alpha"):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                if name == "refine_alpha":
                    refine_alpha(image, alpha, max(w, h) / MODEL_SIDE)
                else:
                    estimate_foreground(image, alpha)
                times.append(time.perf_counter() - start)
            print(f"  {name:20s} {label:6s} median {statistics.median(times) * 1000:7.0f} ms "
                  f"({repeats} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    cutouts = sorted((args.data / "rembg_u2netp").glob("*.u2netp.png"))
    if not cutouts:
        raise SystemExit(f"no cutouts under {args.data / 'rembg_u2netp'}")
    rows = {}
    for path in cutouts:
        fg, alpha = load(path)
        for bg in BACKGROUNDS:
            rows[(path.name.split(".")[0], bg)] = measure_case(fg, alpha, bg)
    keys = list(next(iter(rows.values())))
    print(f"{'cutout':14s} {'background':10s} " + " ".join(f"{k:>15s}" for k in keys))
    for (name, bg), row in rows.items():
        print(f"{name:14s} {bg:10s} " + " ".join(f"{row[k]:15.2f}" for k in keys))
    print(f"{'mean':25s} " + " ".join(
        f"{statistics.mean(r[k] for r in rows.values()):15.2f}" for k in keys))
    if not args.no_timing:
        print("timing (float32, one process; medians):")
        timing(args.repeats, args.data)


if __name__ == "__main__":
    main()
