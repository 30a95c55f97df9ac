"""The decision record as `mattectl status` and the report show it."""

from __future__ import annotations

from mattectl.matting.cropcheck import CropCheck
from mattectl.rules.report import describe


def test_a_crop_given_up_for_the_whole_frame_says_why() -> None:
    check = CropCheck(None, 2, (("left",), ()), why="the grown crop lost part of the subject")
    rows = dict(row for row in describe({"model": "u2net", "crop": [1, 2, 30, 40],
                                         "crop_check": check.record()}) if row[0])
    assert rows["crop check"] == (
        "2 crop pass(es); the subject touched the crop's left border; the whole frame was "
        "matted instead (the grown crop lost part of the subject)")
