#!/usr/bin/env python3
"""Encode-time benchmark per output format at 1080p and 24 MP (medians; numbers for the README).

The picture is a real photo (../shared/data/.../bike.jpg) enlarged to size, with an alpha shaped
like a cutout's (a soft subject, three quarters transparent; the colour under it kept, as
mattectl writes it). Each candidate encodes the same array; the table gives the median time,
the spread and the file size. What mattectl uses is marked with *.

Usage: PYTHONPATH=daemon python scripts/bench_encode.py [--repeats 5] [--sizes 1080p,24mp]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import fpng
import numpy as np
from PIL import Image

from mattectl.imageio import png as png_module
from mattectl.imageio import tiff as tiff_module
from mattectl.imageio.metadata import Metadata
from mattectl.imageio.options import OutputFormat, OutputOptions
from mattectl.imageio.png import encode_png
from mattectl.imageio.read import DecodedImage
from mattectl.imageio.tiff import encode_tiff
from mattectl.imageio.write import render

SIZES = {"1080p": (1920, 1080), "24mp": (6000, 4000)}


def picture(width: int, height: int, data: Path) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx4 uint8 RGBA, HxWx4 uint16 RGBA) of a real photo under a cutout-shaped alpha."""
    photo = Image.open(data / "u2net_official" / "test_images" / "bike.jpg").convert("RGB")
    rgb = np.asarray(photo.resize((width, height), Image.Resampling.BICUBIC))
    alpha = np.zeros((320, 320), np.float32)
    cv2.ellipse(alpha, (160, 190), (80, 140), 0, 0, 360, 1.0, -1)
    alpha = cv2.resize(cv2.GaussianBlur(alpha, (0, 0), 2.0), (width, height))
    rgba8 = np.dstack([rgb, np.round(alpha * 255).astype(np.uint8)])
    # 16 bits with real low-order content (a 16-bit scan or raw export is not 8 bits x 257).
    noise = np.random.default_rng(0).integers(0, 257, rgba8.shape, dtype=np.uint16)
    rgba16 = (rgba8.astype(np.uint16) * 257 - 128 + noise).clip(0, 65535).astype(np.uint16)
    return rgba8, rgba16


def pillow(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def opencv(ext: str, arr: np.ndarray, params: list[int]) -> bytes:
    code = cv2.COLOR_RGBA2BGRA if arr.ndim == 3 and arr.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, buf = cv2.imencode(ext, cv2.cvtColor(arr, code) if arr.ndim == 3 else arr, params)
    assert ok
    return buf.tobytes()


def patched(module: object, encode: Callable[[], bytes], **settings: object) -> Callable[[], bytes]:
    """``encode`` run with the module's constants (level, strategy) set to ``settings``."""
    def run() -> bytes:
        saved = {name: getattr(module, name) for name in settings}
        for name, value in settings.items():
            setattr(module, name, value)
        try:
            return encode()
        finally:
            for name, value in saved.items():
                setattr(module, name, value)
    return run


def candidates(rgba8: np.ndarray, rgba16: np.ndarray) -> dict[str, Callable[[], bytes]]:
    img8 = Image.fromarray(rgba8, "RGBA")
    flat = Image.fromarray(np.ascontiguousarray(rgba8[:, :, :3]), "RGB")
    matte = np.ascontiguousarray(rgba8[:, :, 3])
    png = cv2.IMWRITE_PNG_COMPRESSION
    return {
        "png8  fpng *": lambda: fpng.from_ndarray(rgba8),
        "png8  opencv level 1": lambda: opencv(".png", rgba8, [png, 1]),
        "png8  opencv level 3": lambda: opencv(".png", rgba8, [png, 3]),
        "png8  pillow level 6 (default)": lambda: pillow(img8, "PNG", compress_level=6),
        "png16 sub + huffman only, threads *": lambda: encode_png(rgba16),
        "png16 sub + deflate 1, threads": patched(
            png_module, lambda: encode_png(rgba16), STRATEGIES={2: zlib.Z_DEFAULT_STRATEGY}),
        "png16 sub + deflate 6, threads": patched(
            png_module, lambda: encode_png(rgba16), DEFLATE_LEVEL=6,
            STRATEGIES={2: zlib.Z_DEFAULT_STRATEGY}),
        "png16 opencv level 1": lambda: opencv(".png", rgba16, [png, 1]),
        "png16 opencv level 3": lambda: opencv(".png", rgba16, [png, 3]),
        "png16 opencv level 6": lambda: opencv(".png", rgba16, [png, 6]),
        "matte sub + rle, threads *": lambda: encode_png(matte),
        "matte sub + deflate 1, threads": patched(
            png_module, lambda: encode_png(matte), STRATEGIES={1: zlib.Z_DEFAULT_STRATEGY}),
        "matte opencv level 1": lambda: opencv(".png", matte, [png, 1]),
        "tiff8  huffman only + predictor, threads *": lambda: encode_tiff(rgba8),
        "tiff8  deflate 1 + predictor, threads": patched(
            tiff_module, lambda: encode_tiff(rgba8), DEFLATE_STRATEGY=zlib.Z_DEFAULT_STRATEGY),
        "tiff8  deflate 6 + predictor, threads": patched(
            tiff_module, lambda: encode_tiff(rgba8), DEFLATE_LEVEL=6,
            DEFLATE_STRATEGY=zlib.Z_DEFAULT_STRATEGY),
        "tiff8  uncompressed": lambda: encode_tiff(rgba8, compress=False),
        "tiff8  pillow adobe_deflate": lambda: pillow(img8, "TIFF",
                                                      compression="tiff_adobe_deflate"),
        "tiff8  pillow lzw": lambda: pillow(img8, "TIFF", compression="tiff_lzw"),
        "tiff16 huffman only + predictor, threads": lambda: encode_tiff(rgba16, compress=True),
        "tiff16 deflate 1 + predictor, threads": patched(
            tiff_module, lambda: encode_tiff(rgba16, compress=True),
            DEFLATE_STRATEGY=zlib.Z_DEFAULT_STRATEGY),
        "tiff16 uncompressed *": lambda: encode_tiff(rgba16),
        "webp  lossless effort 0 method 0 *": lambda: pillow(img8, "WEBP", lossless=True,
                                                           quality=0, method=0),
        "webp  lossless effort 25 method 2": lambda: pillow(img8, "WEBP", lossless=True,
                                                          quality=25, method=2),
        "webp  lossless effort 75 method 4": lambda: pillow(img8, "WEBP", lossless=True,
                                                          quality=75, method=4),
        "webp  lossless effort 0, exact": lambda: pillow(img8, "WEBP", lossless=True, quality=0,
                                                         method=0, exact=True),
        "jpeg  pillow q95 4:4:4 *": lambda: pillow(flat, "JPEG", quality=95, subsampling=0),
        "jpeg  pillow q95 4:4:4 optimize": lambda: pillow(flat, "JPEG", quality=95,
                                                          subsampling=0, optimize=True),
        "jpeg  opencv q95": lambda: opencv(".jpg", rgba8[:, :, :3].copy(),
                                           [cv2.IMWRITE_JPEG_QUALITY, 95]),
    }


def renders(rgba8: np.ndarray) -> dict[str, Callable[[], bytes]]:
    """The whole end of a job, render(): clean edges (alpha enlarged from 320x320), trim off,
    and the encoder mattectl uses for each format."""
    rgb = np.ascontiguousarray(rgba8[:, :, :3])
    image = DecodedImage(rgb=rgb, pixels=rgb, alpha=None, icc_profile=None,
                         metadata=Metadata(), format="JPEG", source_mode="RGB")
    alpha = rgba8[:, :, 3].astype(np.float32) / 255
    out: dict[str, Callable[[], bytes]] = {}
    for fmt in OutputFormat:
        for clean in (True, False):
            options = OutputOptions(format=fmt, clean_edges=clean)
            name = f"render {fmt.value:5s} clean_edges={'on ' if clean else 'off'}"
            out[name] = lambda o=options: render(image, alpha, o, model_side=320).data
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="1080p,24mp")
    parser.add_argument("--only", default="", help="run candidates whose name contains this")
    parser.add_argument("--skip", default="", help="comma-separated name parts to leave out")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        width, height = SIZES[size]
        rgba8, rgba16 = picture(width, height, args.data)
        print(f"\n{size} ({width}x{height}), {args.repeats} runs each")
        print(f"{'candidate':42s} {'median ms':>10s} {'min..max ms':>15s} {'MB':>7s}")
        for name, encode in {**candidates(rgba8, rgba16), **renders(rgba8)}.items():
            skipped = [part for part in args.skip.split(",") if part and part in name]
            if args.only not in name or skipped:
                continue
            times, size_bytes = [], 0
            for _ in range(args.repeats):
                start = time.perf_counter()
                size_bytes = len(encode())
                times.append((time.perf_counter() - start) * 1000)
            print(f"{name:42s} {statistics.median(times):10.0f} "
                  f"{min(times):7.0f}..{max(times):<7.0f} {size_bytes / 1e6:7.2f}", flush=True)


if __name__ == "__main__":
    main()
