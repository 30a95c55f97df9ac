"""The crop to the subject never cuts the subject: borders checked, box grown, passes merged."""

from __future__ import annotations

import numpy as np

from mattectl.imageio.regions import parts
from mattectl.matting.cropcheck import (
    LARGE,
    CropCheck,
    connected_outside,
    crop_worse,
    cut,
    lost_part,
    matte_crop,
    touched_sides,
)
from mattectl.rules.facts import Box

W, H = 200, 200


def person(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """A frame whose red channel marks the subject (a plain keyer reads it back exactly)."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[y0:y1, x0:x1, 0] = 255
    return rgb


class Keyer:
    """A stand-in model that sees the subject exactly in whatever crop it gets; counts passes."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, int]] = []

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        self.shapes.append(rgb.shape[:2])
        return (rgb[:, :, 0] > 128).astype(np.float32)


def never() -> np.ndarray:
    raise AssertionError("the whole frame was not needed")


def test_cut_is_a_contiguous_copy_of_the_box() -> None:
    rgb = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    piece = cut(rgb, Box(2, 1, 5, 4))
    assert piece.shape == (3, 3, 3)
    assert piece.flags["C_CONTIGUOUS"]
    assert (piece == rgb[1:4, 2:5]).all()


def test_touching_counts_only_sides_inside_the_frame() -> None:
    alpha = np.zeros((10, 10), np.float32)
    alpha[:-1, 0] = 1  # the left column, down to the last row
    alpha[-1, 4:6] = 1  # two pixels on the bottom row
    assert touched_sides(alpha, Box(20, 20, 30, 30), W, H) == ("left", "bottom")
    assert touched_sides(alpha, Box(0, 20, 10, 30), W, H) == ("bottom",)  # left is the frame's
    alpha[-1, 4] = 0  # one pixel is a speck, not a person
    assert touched_sides(alpha, Box(0, 20, 10, 30), W, H) == ()


def test_a_box_that_saw_only_the_upper_body_grows_until_the_legs_are_inside() -> None:
    # The probe saw the head and chest; the legs go on to y = 110.
    rgb = person(90, 40, 110, 110)
    keyer = Keyer()
    alpha, check = matte_crop(keyer, rgb, Box(80, 30, 120, 70), np.zeros((H, W), np.float32),
                              never)
    truth = (rgb[:, :, 0] > 128).astype(np.float32)
    np.testing.assert_array_equal(alpha, truth)  # the old single pass ended at y = 70
    assert check.rounds == len(keyer.shapes) >= 2
    assert check.touched[0] == ("bottom",)
    assert check.touched[-1] == ()
    assert check.box is not None
    assert check.box.y1 >= 110
    assert check.box.width == check.box.height  # a square crop for U²-Net's square input
    assert check.record()["whole_frame"] is False


def test_past_the_last_pass_the_full_frame_pass_completes_the_person() -> None:
    rgb = person(90, 40, 110, 190)  # legs too long for three passes
    truth = (rgb[:, :, 0] > 128).astype(np.float32)
    alpha, check = matte_crop(Keyer(), rgb, Box(80, 30, 120, 70), truth, never)
    assert check.touched[-1] == ("bottom",)
    assert check.box is not None
    assert check.box.y1 < 190
    assert check.merged_px > 0
    np.testing.assert_array_equal(alpha >= 0.5, truth >= 0.5)


def test_a_crop_over_most_of_the_frame_gives_way_to_the_whole_frame() -> None:
    rgb = person(20, 20, 180, 170)
    keyer = Keyer()
    alpha, check = matte_crop(keyer, rgb, Box(15, 15, 185, 175), np.zeros((H, W), np.float32),
                              lambda: keyer(rgb))
    np.testing.assert_array_equal(alpha, (rgb[:, :, 0] > 128).astype(np.float32))
    assert check.box is None
    assert check.record()["whole_frame"] is True
    assert keyer.shapes == [(H, W)]


def test_a_touching_crop_less_sure_than_the_full_frame_gives_way_to_it() -> None:
    rgb = person(90, 40, 110, 190)
    full = (rgb[:, :, 0] > 128).astype(np.float32)  # the full-frame pass is sure
    blurry = lambda crop: Keyer()(crop) * 0.6  # noqa: E731 - a model unsure of everything
    whole = np.ones((H, W), np.float32)
    alpha, check = matte_crop(blurry, rgb, Box(80, 30, 120, 70), full, lambda: whole)
    assert alpha is whole
    assert check.box is None
    assert check.touched[-1] == ("bottom",)


def test_the_full_frame_pass_fills_in_what_continues_past_the_final_box() -> None:
    full = np.zeros((H, W), np.float32)
    full[50:100, 50:60] = 1  # one part, crossing the box's right edge
    full[150:160, 150:160] = 1  # a separate speck, far away
    mask = connected_outside(full, Box(40, 40, 55, 110))
    assert mask[60, 58]  # the part's continuation outside the box
    assert not mask[60, 50]  # inside the box: the crop's alpha stays
    assert not mask[155, 155]  # unconnected: not the subject's
    assert mask[60, 62]  # a few pixels of fringe for the soft edge


def test_a_subject_inside_the_crop_takes_one_pass() -> None:
    rgb = person(90, 90, 100, 110)
    keyer = Keyer()
    alpha, check = matte_crop(keyer, rgb, Box(80, 80, 110, 120),
                              np.zeros((H, W), np.float32), never)
    assert check == CropCheck(Box(75, 80, 115, 120), 1, ((),), 0)
    assert len(keyer.shapes) == 1
    assert alpha.sum() == 10 * 20


def test_a_crisp_crop_that_claims_more_than_the_full_frame_is_a_distractor_made_crisp() -> None:
    person = np.zeros((100, 100), np.float32)
    person[40:60, 45:55] = 1
    soft_person = person * 0.7  # the crop's person: softer (hair at full resolution)
    rectangle = np.zeros_like(person)
    rectangle[20:80, 30:70] = 1  # the full frame: a crisp, wrong blob around the person
    assert not crop_worse(soft_person, rectangle, cuts=False)  # less, softer: a real person
    assert crop_worse(soft_person, rectangle, cuts=True)  # but not if it still cuts them
    plant = np.maximum(rectangle * 0.7, person)  # the crop made the plant as big as the person
    assert not crop_worse(plant, person * 0.9, cuts=False)  # surer than a hesitant full frame
    assert crop_worse(plant, person, cuts=False)  # less sure and claims more: the full frame


class Salient:
    """A stand-in model that sees every red object in its crop but, like a saliency model, lets
    an object more than twice as large outshine a smaller one."""

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        labels, areas = parts(rgb[:, :, 0] > 128, 0.5)
        return (areas[labels] > 0).astype(np.float32)


def test_a_grown_crop_that_latches_onto_a_larger_neighbour_gives_way_to_the_whole_frame() -> None:
    # A person (20x100 px) beside a large animal (80x60 px) that the probe's box cut through:
    # the first crop sees the person and part of the animal, which touches its left border; the
    # grown crop sees the whole animal, which outshines the person.
    rgb = person(90, 30, 110, 130)
    rgb[70:130, 5:85, 0] = 255
    full = (rgb[:, :, 0] > 128).astype(np.float32)  # the full frame sees both
    whole = full.copy()
    alpha, check = matte_crop(Salient(), rgb, Box(80, 25, 120, 135), full, lambda: whole)
    assert check.touched[0] == ("left",)
    assert check.rounds == 2
    assert alpha is whole  # the old check kept the grown crop: the animal, without the person
    assert check.box is None
    assert check.why == "the grown crop lost part of the subject"
    assert check.record()["why"] == check.why


def test_a_part_is_lost_only_when_an_earlier_pass_kept_it() -> None:
    full = np.zeros((H, W), np.float32)
    full[20:40, 20:40] = 1  # the person
    full[100:180, 100:180] = 1  # a larger neighbour
    small, grown = Box(10, 10, 60, 60), Box(0, 0, 200, 200)
    person_only = np.zeros((50, 50), bool)
    person_only[10:30, 10:30] = True
    neighbour_only = np.zeros((H, W), bool)
    neighbour_only[100:180, 100:180] = True
    assert lost_part(full, [(small, person_only), (grown, neighbour_only)])
    assert not lost_part(full, [(small, person_only), (grown, full >= 0.5)])  # kept both
    assert not lost_part(full, [(grown, neighbour_only)])  # one pass: nothing to compare
    never_kept = np.zeros((50, 50), bool)
    assert not lost_part(full, [(small, never_kept), (grown, neighbour_only)])


def test_a_softer_crop_of_a_large_subject_gives_way_to_the_full_frame() -> None:
    body = np.zeros((100, 100), np.float32)
    body[10:90, 20:80] = 1  # a person over 0.48 of the frame, seen crisply on the whole frame
    softer = body.copy()
    softer[80:90] = 0  # the crop claims a little less, and softly
    softer *= 0.7
    assert np.count_nonzero(softer >= 0.5) >= LARGE * softer.size
    assert crop_worse(softer, body, cuts=False)  # the old check kept it: it claimed less
