"""An evaluation set whose truth is exact: real cut-out subjects composited over real backgrounds.

A subject is a real photo and the alpha a real model made for it. Compositing
``I = alpha * F + (1 - alpha) * B`` with the photo as ``F`` and another real photo as ``B``
gives an image whose true alpha is, by construction, exactly the alpha used, as in the Adobe
matting benchmark. Backgrounds of different kinds (a salient distractor, busy foliage, bright
texture, skin-coloured tones, objects indoors and out) and subjects placed smaller in the frame
show where a model struggles.

Layout written by :func:`write_set`: ``images/<name>.png`` (lossless, so nothing but the
composite differs from the truth), ``alphas/<name>.png`` (8-bit grey truth) and
``images/manifest.json`` (subject, background, kind and scale of every image).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mattectl.errors import InputError
from mattectl.fsutil import write_file
from mattectl.imageio.matte import decode_matte, encode_matte
from mattectl.imageio.preview import cover, encode_png, resize
from mattectl.imageio.read import decode

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MAX_PIXELS = 200_000_000  # photos larger than this are refused before decoding

# Real backgrounds in the U-2-Net and rembg published test data (paths relative to a folder
# holding u2net_official/ and rembg_u2netp/), each named for the difficulty it brings.
STANDARD_BACKGROUNDS: tuple[tuple[str, str], ...] = (
    ("u2net_official/test_images/boat.jpg", "distractor-person"),  # a boat with a man on it
    ("rembg_u2netp/plants-1.jpg", "busy-foliage"),
    ("u2net_official/test_images/long.jpg", "bright-texture"),  # calligraphy on paper
    ("u2net_official/test_images/im_27.png", "skin-coloured"),  # orange sky over sand
    ("u2net_official/test_images/lamp2_meitu_1.jpg", "indoor-object"),  # a desk lamp
    ("u2net_official/test_images/bike.jpg", "outdoor-object"),  # a bike in a forest
)
# Real subjects: the people of U-2-Net's human test set, cut out by the published outputs of
# the real u2net_human_seg model.
STANDARD_PHOTOS = "u2net_official/test_human_images"
STANDARD_MATTES = "u2net_official/u2net_test_human_images_results"


@dataclass(frozen=True)
class Subject:
    name: str
    rgb: np.ndarray  # HxWx3 uint8
    alpha: np.ndarray  # HxW float32 in [0, 1], same size


@dataclass(frozen=True)
class Background:
    name: str
    kind: str
    rgb: np.ndarray  # HxWx3 uint8


@dataclass(frozen=True)
class Entry:
    name: str
    subject: str
    background: str
    kind: str
    scale: float


def quantise(alpha: np.ndarray) -> np.ndarray:
    """Alpha rounded to the 8 bits it is stored with, so the stored truth is the one used."""
    # The same float decode_matte reads back: level * (1 / 255).
    return np.round(np.clip(alpha, 0, 1) * 255).astype(np.float32) * np.float32(1 / 255)


def place(subject: Subject, width: int, height: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Subject photo and alpha on a ``width x height`` canvas: scaled by ``scale`` and standing
    on the bottom edge, centred (alpha 0 elsewhere)."""
    sh, sw = (max(1, round(side * scale)) for side in subject.alpha.shape)
    rgb = np.zeros((height, width, 3), np.uint8)
    alpha = np.zeros((height, width), np.float32)
    top, left = height - sh, (width - sw) // 2
    rgb[top:, left:left + sw] = resize(subject.rgb, sw, sh)
    alpha[top:, left:left + sw] = resize(subject.alpha, sw, sh)
    return rgb, alpha


def composite(subject: Subject, background: Background,
              scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(image, truth)``: the subject over the background, on a canvas of the subject photo's
    size. ``image`` is ``HxWx3`` uint8, ``truth`` ``HxW`` float32 holding 8-bit levels."""
    height, width = subject.alpha.shape
    fg, alpha = place(subject, width, height, scale)
    alpha = quantise(alpha)
    bg = cover(background.rgb, width, height).astype(np.float32)
    a = alpha[:, :, None]
    image = np.clip(fg * a + bg * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    return image, alpha


def load_rgb(path: Path) -> np.ndarray:
    """A photo file as ``HxWx3`` uint8 RGB (orientation applied); InputError when unreadable."""
    return decode(path.read_bytes(), name=str(path), max_pixels=MAX_PIXELS).rgb


def subjects_from_mattes(photos: Path, mattes: Path) -> Iterator[Subject]:
    """Each photo with the matte of the same stem (``.png``) in ``mattes``; photos without one
    are skipped with a warning."""
    for photo in sorted(p for p in photos.iterdir() if p.is_file()):
        matte = mattes / f"{photo.stem}.png"
        if not matte.is_file():
            logger.warning("no matte for %s in %s: skipped", photo.name, mattes)
            continue
        rgb, alpha = load_rgb(photo), decode_matte(matte.read_bytes(), name=str(matte))
        if alpha.shape != rgb.shape[:2]:
            alpha = resize(alpha, rgb.shape[1], rgb.shape[0])
        yield Subject(photo.stem, rgb, alpha)


def subjects_from_model(photos: Iterable[Path],
                        predict: Callable[[np.ndarray], np.ndarray]) -> Iterator[Subject]:
    """Each photo cut out by a model (``predict``: RGB -> alpha, e.g. a backend's predict)."""
    for photo in photos:
        rgb = load_rgb(photo)
        yield Subject(photo.stem, rgb, predict(rgb))


def standard_backgrounds(data_root: Path) -> list[Background]:
    return [Background(Path(rel).stem, kind, load_rgb(data_root / rel))
            for rel, kind in STANDARD_BACKGROUNDS]


Composite = tuple[Subject, Background, float]


def plan(subjects: Sequence[Subject], backgrounds: Sequence[Background],
         scales: Sequence[float], per_subject: int | None = None) -> Iterator[Composite]:
    """Which composites to make: every subject over ``per_subject`` backgrounds (all when None),
    taken in turn so that each background is used about equally, at every scale."""
    count = len(backgrounds) if per_subject is None else min(per_subject, len(backgrounds))
    for i, subject in enumerate(subjects):
        for j in range(count):
            background = backgrounds[(i + j) % len(backgrounds)]
            for scale in scales:
                yield subject, background, scale


def entry_name(subject: Subject, background: Background, scale: float) -> str:
    return f"{subject.name}__{background.name}__s{round(scale * 100):03d}"


def write_set(out: Path, jobs: Iterable[Composite]) -> list[Entry]:
    """Write the composites, their truths and the manifest under ``out``. Files of an earlier
    set there are replaced; a folder holding anything else is refused (never overwrite photos)."""
    images, alphas = out / "images", out / "alphas"
    for folder in (images, alphas):
        if folder.is_dir() and any(folder.iterdir()) and not (images / MANIFEST).is_file():
            raise InputError(f"{folder} already holds files that are not an evaluation set "
                             "written by mattectl: choose an empty folder")
    images.mkdir(parents=True, exist_ok=True)
    alphas.mkdir(parents=True, exist_ok=True)
    entries = []
    for subject, background, scale in jobs:
        name = entry_name(subject, background, scale)
        image, truth = composite(subject, background, scale)
        write_file(images / f"{name}.png", encode_png(image), "overwrite")
        write_file(alphas / f"{name}.png", encode_matte(truth), "overwrite")
        entries.append(Entry(name, subject.name, background.name, background.kind, scale))
    manifest = json.dumps([asdict(e) for e in entries], indent=1).encode()
    write_file(images / MANIFEST, manifest, "overwrite")
    logger.info("wrote %d composites to %s", len(entries), out)
    return entries


def read_tags(images: Path) -> dict[str, dict[str, str]]:
    """``{image stem: {"background kind": ..., "subject scale": ...}}`` from a manifest in the
    images folder; empty when there is none."""
    path = images / MANIFEST
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text())
    return {row["name"]: {"background": row["kind"], "scale": f"{row['scale']:g}"}
            for row in rows}
