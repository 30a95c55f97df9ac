"""Does a rules preset (crop to subject) ever lose the person? Measured on people of every size.

Frames are made as :mod:`mattectl.evaluation.dataset` makes its composites (a real person cut out
by a real matte, over a real background; the truth is exact by construction), but at sizes from
filling the frame to a tenth of it and at places drawn per frame (a seeded generator: the same
set every run), partly cut by the frame's edge as people in real photos are. Each frame is
matted twice, by the preset through the rules engine (as the daemon does, before clean edges)
and by one model on the whole frame, and both alphas are scored by IoU at alpha 0.5.

Subjects are split by name into a tuning half and a held-out half (``split``), so a change
tuned on one half is checked on photos it never saw.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mattectl.evaluation.dataset import Background, Subject, quantise
from mattectl.imageio.preview import cover, resize
from mattectl.matting.planner import FolderRules, RulePlanner

SCALES = (1.0, 0.7, 0.5, 0.35, 0.2, 0.1)
MAX_SIDE = 640  # frames as small as the 480x640 photos of ordinary people sets
LOSS = 0.05  # an IoU drop larger than this is a lost (or cut) subject


@dataclass(frozen=True)
class Frame:
    name: str
    split: str  # "tune" or "held-out"
    scale: float
    image: np.ndarray  # HxWx3 uint8
    truth: np.ndarray  # HxW float32


@dataclass(frozen=True)
class CropResult:
    name: str
    split: str
    scale: float
    preset_iou: float
    whole_iou: float
    cropped: bool
    rounds: int  # crop passes (0: no crop)
    whole_frame: bool  # the crop was given up for the whole frame
    confidence: float = math.nan  # the preset's own confidence in its alpha
    mae: float = math.nan  # mean |alpha - truth| of the preset's alpha

    @property
    def delta(self) -> float:
        return self.preset_iou - self.whole_iou


def split_of(name: str) -> str:
    """A subject's half, fixed by its name (not by the order or the number of subjects)."""
    return "held-out" if hashlib.sha256(name.encode()).digest()[0] % 2 else "tune"


def _draw(name: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8]))


def frame(subject: Subject, background: Background, scale: float) -> Frame:
    """The subject at ``scale`` of the frame (a frame of the subject photo's shape, at most
    ``MAX_SIDE``) at a drawn place, over the background."""
    h, w = subject.alpha.shape
    shrink = min(1.0, MAX_SIDE / max(h, w))
    height, width = max(1, round(h * shrink)), max(1, round(w * shrink))
    name = f"{subject.name}__{background.name}__s{round(scale * 100):03d}"
    rng = _draw(name)
    sh, sw = max(1, round(height * scale)), max(1, round(width * scale))
    # Anywhere in the frame, and up to a fifth of the person past its bottom or side edge.
    top = int(rng.integers(0, height - sh + 1 + (sh // 5 if scale < 1 else 0)))
    left = int(rng.integers(-(sw // 5), width - sw + 1 + sw // 5)) if scale < 1 else 0
    fg, alpha = np.zeros((height, width, 3), np.float32), np.zeros((height, width), np.float32)
    rgb, matte = resize(subject.rgb, sw, sh), resize(subject.alpha, sw, sh)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(height, top + sh), min(width, left + sw)
    fg[y0:y1, x0:x1] = rgb[y0 - top:y1 - top, x0 - left:x1 - left]
    alpha[y0:y1, x0:x1] = matte[y0 - top:y1 - top, x0 - left:x1 - left]
    alpha = quantise(alpha)
    bg = cover(background.rgb, width, height).astype(np.float32)
    a = alpha[:, :, None]
    image = np.clip(fg * a + bg * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    return Frame(name, split_of(subject.name), scale, image, alpha)


def frames(subjects: Sequence[Subject], backgrounds: Sequence[Background],
           scales: Sequence[float] = SCALES, per_subject: int = 2) -> Iterator[Frame]:
    """Every subject over ``per_subject`` backgrounds at every scale; which backgrounds is
    fixed by the subject's name, so a subject gets the same frames in any selection."""
    for subject in subjects:
        first = hashlib.sha256(subject.name.encode()).digest()[1] % len(backgrounds)
        for j in range(min(per_subject, len(backgrounds))):
            for scale in scales:
                yield frame(subject, backgrounds[(first + j) % len(backgrounds)], scale)


def iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    a, b = alpha >= 0.5, truth >= 0.5
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def measure(planner: RulePlanner, preset: str, baseline: str, item: Frame) -> CropResult:
    """The preset's alpha and ``baseline`` on the whole frame, scored against the truth."""
    matte = planner.matte(item.image, FolderRules(preset, "eval"), item.name)
    whole = planner.models.get(baseline).predict(item.image)
    check = matte.decision.get("crop_check") or {}
    return CropResult(item.name, item.split, item.scale, iou(matte.alpha, item.truth),
                      iou(whole, item.truth), matte.decision.get("crop") is not None,
                      int(check.get("rounds", 0)), bool(check.get("whole_frame", False)),
                      math.nan if matte.confidence is None else matte.confidence,
                      float(np.abs(matte.alpha - item.truth).mean()))


@dataclass(frozen=True)
class Summary:
    photos: int
    preset_iou: float
    whole_iou: float
    cropped: int
    lost: int  # photos whose IoU dropped by more than LOSS
    gained: int
    worst: float  # the largest drop (negative: the preset never did worse)

    @property
    def lost_share(self) -> float:
        return self.lost / self.photos if self.photos else 0.0


def summarise(results: Sequence[CropResult]) -> Summary:
    if not results:
        return Summary(0, math.nan, math.nan, 0, 0, 0, math.nan)
    deltas = [r.delta for r in results]
    return Summary(len(results), float(np.mean([r.preset_iou for r in results])),
                   float(np.mean([r.whole_iou for r in results])),
                   sum(r.cropped for r in results), sum(d < -LOSS for d in deltas),
                   sum(d > LOSS for d in deltas), -min(deltas))


def table(results: Sequence[CropResult], preset: str, baseline: str) -> str:
    """The summary per split and per scale, as text."""
    head = (f"{'set':<16} {'photos':>6} {'IoU ' + preset:>14} {'IoU ' + baseline:>12} "
            f"{'cropped':>7} {'lost>' + str(LOSS):>9} {'share':>6} {'gained':>6} {'worst':>6}")
    groups: dict[str, list[CropResult]] = {}
    for r in results:
        groups.setdefault(r.split, []).append(r)
    for scale in sorted({r.scale for r in results}, reverse=True):
        groups[f"scale {scale:g}"] = [r for r in results if r.scale == scale]
    groups["all"] = list(results)
    lines = [head]
    for label, group in groups.items():
        s = summarise(group)
        lines.append(f"{label:<16} {s.photos:>6} {s.preset_iou:>14.4f} {s.whole_iou:>12.4f} "
                     f"{s.cropped:>7} {s.lost:>9} {s.lost_share:>6.1%} {s.gained:>6} "
                     f"{s.worst:>6.3f}")
    return "\n".join(lines)


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):  # ties share their mean rank
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def correlations(results: Sequence[CropResult]) -> dict[str, float]:
    """Pearson and Spearman correlation of the confidence with the error (1 - IoU, and MAE):
    a useful confidence correlates negatively."""
    rows = [r for r in results if not math.isnan(r.confidence)]
    if len(rows) < 3:
        return {}
    conf = np.array([r.confidence for r in rows])
    out = {}
    for label, error in (("1-IoU", [1 - r.preset_iou for r in rows]),
                         ("MAE", [r.mae for r in rows])):
        err = np.array(error)
        out[f"pearson {label}"] = float(np.corrcoef(conf, err)[0, 1])
        out[f"spearman {label}"] = float(np.corrcoef(_ranks(conf), _ranks(err))[0, 1])
    return out
