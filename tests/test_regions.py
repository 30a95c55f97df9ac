"""Pixel work on alpha mattes: the parts of a mask, specks left out."""

from __future__ import annotations

import numpy as np

from mattectl.imageio.regions import parts


def test_parts_are_labelled_with_their_areas_and_specks_count_as_none() -> None:
    mask = np.zeros((50, 50), bool)
    mask[0:10, 0:10] = True  # 100 px
    mask[20:25, 20:30] = True  # 50 px: half the largest
    mask[40, 40] = True  # a speck
    labels, areas = parts(mask, 0.1)
    assert areas[labels[5, 5]] == 100
    assert areas[labels[22, 25]] == 50
    assert areas[labels[40, 40]] == 0
    assert areas[labels[30, 5]] == 0  # outside every part
    _, areas = parts(mask, 0.6)
    assert sorted(areas[areas > 0]) == [100]
    _, areas = parts(np.zeros((5, 5), bool), 0.1)
    assert not areas.any()
