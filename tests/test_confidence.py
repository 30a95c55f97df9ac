"""The per-photo confidence: high for a decided alpha, low for a hesitant one or a disagreement."""

from __future__ import annotations

import numpy as np
import pytest

from mattectl.matting.confidence import agreement, band_confidence, confidence


def disc(size: int = 400, radius: int = 120, soft: float = 2.0) -> np.ndarray:
    """A round subject whose edge ramps over about ``soft`` pixels."""
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(yy - size / 2, xx - size / 2)
    return np.clip((radius - distance) / soft + 0.5, 0, 1).astype(np.float32)


def test_a_crisp_subject_is_trusted_and_a_hesitant_one_is_not() -> None:
    crisp = band_confidence(disc(soft=2))
    assert crisp > 0.95
    # The same person left half transparent inside (a pale face, a faded limb).
    pale = disc(soft=2)
    pale[150:250, 150:250] = 0.5
    assert band_confidence(pale) < crisp - 0.2  # a fifth of the subject is pale
    # A model unsure everywhere: a wide ramp.
    assert band_confidence(disc(soft=80)) < 0.5


def test_nothing_found_is_no_confidence() -> None:
    assert band_confidence(np.zeros((50, 80), np.float32)) == 0.0
    assert confidence(np.zeros((50, 80), np.float32)) == 0.0


def test_a_large_alpha_is_judged_on_a_small_copy_alike() -> None:
    small, large = disc(400, 120, 2), disc(2000, 600, 10)  # the same picture, 5x larger
    assert band_confidence(large) == pytest.approx(band_confidence(small), abs=0.02)


def test_disagreeing_with_the_probe_lowers_the_confidence() -> None:
    alpha = disc()
    probe = np.zeros((320, 320), np.float32)  # a probe that saw a subject elsewhere
    probe[:50, :50] = 1
    assert agreement(alpha, alpha) == pytest.approx(1.0)
    assert agreement(alpha, probe) == 0.0
    same = confidence(alpha, disc(320, 96, 2))  # the probe is squashed to 320 px
    assert same == pytest.approx(band_confidence(alpha), abs=0.03)
    assert confidence(alpha, probe) == 0.0
    assert 0.0 <= same <= 1.0
