"""The finish settings `mattectl eval --finish` scores side by side (evaluation/finish.py)."""

from __future__ import annotations

import pytest

from mattectl.errors import InputError
from mattectl.evaluation.finish import GRID, Finish
from mattectl.imageio.options import EdgeMode

DEFAULT = Finish("official", EdgeMode.MATTING, True)


def test_a_spec_names_any_of_its_parts_in_any_order() -> None:
    assert Finish.parse("no-holes,lanczos", DEFAULT) == Finish("lanczos", EdgeMode.MATTING,
                                                                False)
    assert Finish.parse("guided", DEFAULT) == Finish("official", EdgeMode.GUIDED, True)
    assert Finish.parse("", DEFAULT) == DEFAULT


def test_an_unknown_part_is_named_with_what_is_known() -> None:
    with pytest.raises(InputError, match="'blur' is none of official, lanczos"):
        Finish.parse("lanczos,blur", DEFAULT)


def test_the_grid_holds_every_resampling_and_edge_mode_once() -> None:
    finishes = [Finish.parse(spec, DEFAULT) for spec in GRID]
    assert len(set(finishes)) == len(finishes)
    assert {(f.resample, f.edges) for f in finishes if f.holes} == {
        (r, e) for r in ("official", "lanczos") for e in EdgeMode}
    assert len({f.label for f in finishes}) == len(finishes)
