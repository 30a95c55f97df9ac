"""Crop to the subject: the box to matte (cutting it out and pasting its alpha back is the
matting path's work, ``mattectl.matting.planner``).

U²-Net sees every input squashed to 320x320, so a person filling a twentieth of
the frame gets a few dozen pixels of the network's input; matting a crop around them gives the
network the whole input for the person.
"""

from __future__ import annotations

from mattectl.rules.facts import Box

# A crop that keeps more than this share of the frame gains too little resolution to pay for an
# extra model pass.
MAX_CROP_SHARE = 0.7


def crop_box(subject: Box, width: int, height: int, margin: float) -> Box | None:
    """The subject box grown by ``margin`` times its size on each side, clipped to the frame;
    None when cropping would not help (the crop keeps most of the frame, or is empty)."""
    dx = round(subject.width * margin)
    dy = round(subject.height * margin)
    box = Box(max(0, subject.x0 - dx), max(0, subject.y0 - dy),
              min(width, subject.x1 + dx), min(height, subject.y1 + dy))
    if box.width <= 0 or box.height <= 0 or box.area > MAX_CROP_SHARE * width * height:
        return None
    return box
