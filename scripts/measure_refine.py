"""Measure the edge refinements against truth: the model's alpha, clean edges, alpha matting of
the band (each solver, band widths), hole filling, and rembg's `-a` recipe on the same alpha.

    .venv/bin/python scripts/measure_refine.py /work/shared/data/hairgt [--variants a,b] \
        [--cache /tmp/refine-cache]
    .venv/bin/python scripts/measure_refine.py /work/shared/data/hairgt \
        --timing comp1k_model_furcollar     # ms/MP of each edge mode at 1080p and 24 MP
    .venv/bin/python scripts/measure_refine.py /work/shared/data/hairgt \
        --crops /tmp/hair_crops             # before/after hair crops at 100 %

A variant is a name from :func:`variants` or ``RESAMPLE:KEY=VALUE:...`` (refine_matting's
keywords, ``holes=1`` to fill holes first, ``after=1`` to fill them after refining too).

U²-NetP's alpha is computed once per photo and resampling (cached as .npy); every variant then
runs on it. Prints per-variant means of MAD, SAD/1000, Grad/1000, Conn/1000, interior holes and
the refinement's ms per megapixel.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from mattectl.backends.cache import ModelCache
from mattectl.config import Settings
from mattectl.evaluation.closeups import find_window
from mattectl.evaluation.dataset import load_rgb
from mattectl.evaluation.metrics import measure
from mattectl.evaluation.runner import find_samples
from mattectl.evaluation.visual import over_grey
from mattectl.imageio import refine
from mattectl.imageio.compose import layers, to_uint8
from mattectl.imageio.matte import decode_matte
from mattectl.imageio.options import EdgeMode

MODEL_SIDE = 320
HAIR_SIDE = 320  # the crops' side at 100 %


def model_alpha(image: Path, rgb: np.ndarray, resample: str, cache: Path) -> np.ndarray:
    path = cache / resample / f"{image.stem}.npy"
    if path.exists():
        return np.load(path)
    settings = Settings.model_validate({"models": {"u2net": {"resample": resample,
                                                             "precision": "float32"}}})
    models = ModelCache(settings.models, Path(os.environ["MATTECTL_MODELS_DIR"]))
    alpha = models.get("u2netp").predict(rgb)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, alpha)
    return alpha


def rembg_a(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """rembg's alpha_matting_cutout with its defaults (240, 10, erode 10) on the 8-bit mask."""
    from pymatting import estimate_alpha_cf

    mask = to_uint8(alpha)
    square = np.ones((10, 10), np.uint8)
    fg = cv2.erode((mask > 240).astype(np.uint8), square)
    bg = cv2.erode((mask < 10).astype(np.uint8), square, borderType=cv2.BORDER_CONSTANT,
                   borderValue=1)
    tri = np.full(mask.shape, 0.5)
    tri[fg > 0] = 1
    tri[bg > 0] = 0
    return estimate_alpha_cf(rgb / 255.0, tri).astype(np.float32)


def variants() -> dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]]:
    def clean(rgb: np.ndarray, a: np.ndarray) -> np.ndarray:
        return layers(rgb, a, model_side=MODEL_SIDE, colour=False).alpha

    def matting(**kw: object) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return lambda rgb, a: refine.refine_matting(rgb, a, **kw).alpha

    def holes_then(f: Callable) -> Callable:
        return lambda rgb, a: f(rgb, refine.fill_holes(rgb, a))

    out = {
        "raw-official": ("official", lambda rgb, a: a),
        "raw-lanczos": ("lanczos", lambda rgb, a: a),
        "clean-official": ("official", clean),
        "clean-lanczos": ("lanczos", clean),
        "rembg-a-lanczos": ("lanczos", rembg_a),
        "guided-lanczos": ("lanczos", matting(solver=refine.Solver.GUIDED)),
        "holes-lanczos": ("lanczos", holes_then(lambda rgb, a: a)),
    }
    for share in (0.01, 0.02, 0.04):
        for prior in (1e-3, 1e-2, 1e-1):
            for resample in ("official", "lanczos"):
                out[f"cf-s{share}-p{prior}-{resample}"] = (
                    resample, matting(share=share, prior=prior))
    out["holes-cf-lanczos"] = ("lanczos", holes_then(matting()))
    return out


def parsed(name: str) -> tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """A variant spelt ``RESAMPLE:KEY=VALUE:...`` (keys of refine_matting, ``holes=1``)."""
    resample, *pairs = name.split(":")
    kw: dict[str, object] = {}
    holes = after = False
    for pair in pairs:
        key, value = pair.split("=")
        if key == "holes":
            holes = value == "1"
        elif key == "after":  # fill holes after the refinement too
            after = value == "1"
        elif key == "solver":
            kw[key] = refine.Solver(value)
        else:
            kw[key] = float(value) if "." in value or "e" in value else int(value)

    def run(rgb: np.ndarray, a: np.ndarray) -> np.ndarray:
        if holes:
            a = refine.fill_holes(rgb, a)
        a = refine.refine_matting(rgb, a, **kw).alpha
        return refine.fill_holes(rgb, a) if after else a

    return resample, run


SIZES = {"1080p": (1920, 1080), "24mp": (6000, 4000)}


def timing(root: Path, cache: Path, name: str, repeat: int) -> None:
    """ms per megapixel of the finish stage (alpha and colour, as a folder writes a PNG) at
    1080p and 24 MP: ``name``'s photo and its model alpha enlarged to each size."""
    image = root / "images" / f"{name}.png"
    rgb = load_rgb(image)
    alpha = model_alpha(image, rgb, "lanczos", cache)
    for label, size in SIZES.items():
        big = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        a = np.clip(cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR), 0, 1)
        mp = size[0] * size[1] / 1e6
        for edges in EdgeMode:
            runs = []
            for _ in range(repeat):
                start = time.perf_counter()
                layers(big, a, model_side=MODEL_SIDE, edges=edges, holes=True)
                runs.append((time.perf_counter() - start) * 1000)
            print(f"{label:6} {edges:8} {min(runs) / mp:8.0f} ms/MP (best of {repeat}, "
                  f"{min(runs):.0f} ms for {mp:.1f} MP)", flush=True)


def crops(root: Path, cache: Path, out: Path) -> None:
    """Before/after hair crops at 100 %, each over mid grey: the photo, the truth, the model's
    own alpha (official resampling, edges off), the old defaults (official, clean edges) and the
    new ones (lanczos, matting, holes filled)."""
    out.mkdir(parents=True, exist_ok=True)
    for sample in find_samples(root / "images", root / "alphas"):
        rgb = load_rgb(sample.image)
        truth = decode_matte(sample.alpha.read_bytes(), name=sample.name)
        window = find_window(truth, HAIR_SIDE).slices  # as eval's report picks it
        tiles = {"photo": rgb[window], "truth": over_grey(rgb[window], truth[window])}
        for label, resample, edges in (("model", "official", EdgeMode.OFF),
                                       ("before", "official", EdgeMode.CLEAN),
                                       ("after", "lanczos", EdgeMode.MATTING)):
            alpha = model_alpha(sample.image, rgb, resample, cache)
            cut = layers(rgb, alpha, model_side=MODEL_SIDE, edges=edges,
                         holes=edges is EdgeMode.MATTING)
            tiles[label] = over_grey(cut.colour[window], to_uint8(cut.alpha)[window] / 255)
        for label, tile in tiles.items():
            path = out / f"{sample.name}_{label}.png"
            cv2.imwrite(str(path), cv2.cvtColor(tile, cv2.COLOR_RGB2BGR))
        strip = np.concatenate([tiles[k] for k in ("photo", "before", "after", "truth")], 1)
        cv2.imwrite(str(out / f"{sample.name}_strip.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
        print(f"{sample.name}: window rows {window[0].start}..{window[0].stop}, "
              f"columns {window[1].start}..{window[1].stop}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--variants", default="")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/refine-cache"))
    parser.add_argument("--only", default="")
    parser.add_argument("--timing", default="", help="a photo's stem: time the finish stage")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--crops", type=Path, help="write before/after hair crops here")
    args = parser.parse_args()
    if args.crops:
        crops(args.root, args.cache, args.crops)
        return
    if args.timing:
        timing(args.root, args.cache, args.timing, args.repeat)
        return
    table = variants()
    chosen = args.variants.split(",") if args.variants else list(table)
    chosen = [c for c in chosen if c]
    samples = find_samples(args.root / "images", args.root / "alphas")
    if args.only:
        samples = [s for s in samples if s.name in args.only.split(",")]
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in chosen}
    for sample in samples:
        rgb = load_rgb(sample.image)
        truth = decode_matte(sample.alpha.read_bytes(), name=sample.name)
        for name in chosen:
            resample, fn = table[name] if name in table else parsed(name)
            alpha = model_alpha(sample.image, rgb, resample, args.cache)
            start = time.perf_counter()
            pred = fn(rgb, alpha)
            ms = (time.perf_counter() - start) * 1000
            pred = to_uint8(pred).astype(np.float32) / 255  # as the file is written
            m = measure(pred, truth)
            m["holes"] = refine.interior_holes(pred, truth)
            m["ms_per_mp"] = ms / (rgb.shape[0] * rgb.shape[1] / 1e6)
            rows[name].append(m)
            print(f"{sample.name:28} {name:28} MAD {m['mae_image'] / 1000:.4f} "
                  f"SAD {m['sad_image']:7.2f} Grad {m['grad_image']:6.2f} "
                  f"Conn {m['conn_image']:7.2f} holes {m['holes']} {m['ms_per_mp']:.0f} ms/MP",
                  flush=True)
    print(f"\n{'variant':28} {'MAD':>7} {'SAD':>7} {'Grad':>7} {'Conn':>7} {'holes':>5} "
          f"{'ms/MP':>7}")
    for name, ms in rows.items():
        mean = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
        print(f"{name:28} {mean['mae_image'] / 1000:7.4f} {mean['sad_image']:7.2f} "
              f"{mean['grad_image']:7.2f} {mean['conn_image']:7.2f} "
              f"{sum(m['holes'] for m in ms):5d} {mean['ms_per_mp']:7.0f}")


if __name__ == "__main__":
    main()
