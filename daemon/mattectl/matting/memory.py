"""What a photo's path costs in memory, estimated from its header, and the budget that the
photos in flight share (``daemon.max_decode_mb``).

A photo's header says how many pixels it has, but not what they cost: a 338 KB PNG of 100 MP
took 2.6 GB in the daemon and 1.2 GB in the inference process. Peak RSS of the whole path
(decode, model, clean edges, encoding), above the idle processes, in bytes per pixel of the
photo; measured at 24 MP on the CPU (8, 50 and 100 MP are within 4 bytes of it):

- 8-bit RGB, grey, palette, CMYK, turned by EXIF: daemon 27.5 (PNG output; TIFF 23, JPEG 25,
  WebP 35, matte 15), inference process 7-11;
- 8-bit with transparency: daemon 39, inference process 7-9;
- 16-bit RGB or grey (PNG, TIFF): daemon 55-57, inference process 7-10;
- 16-bit with transparency: daemon 62, inference process 6-13.

Content does not matter since the edge band is worked a strip at a time (see
:mod:`mattectl.imageio.edges`): a flat 100 MP PNG of 0.3 MB takes 22 bytes per pixel in the
daemon and 9 in the inference process; before, flat and noisy photos took 94 and 76 in the
daemon. The estimate takes the most expensive output (WebP) and rounds up
(:data:`BYTES_PER_PIXEL` and the extras), and adds the file's own bytes, which the job holds
throughout. The model's own memory (weights, the activations of a 320x320 pass: 0.2-0.3 GB
for U²-NetP) is there once per loaded model, whatever the photos, and is not budgeted.

Those figures are with clean edges. The band solvers of ``edges = "matting"`` and ``"guided"``
(:mod:`mattectl.imageio.refine`) take more, mostly at their working resolution, which is at
most :data:`~mattectl.imageio.refine.WORK_PIXELS`: a second solve in a warm process (its
imports and JIT already paid) rose above what it was given by (VmHWM), in MB:

- the 9 hair photos of ../shared/data/hairgt at 1 MP, with their u2netp alpha: matting 435 to
  787 (the most where the model was unsure of the most pixels), guided 96 to 171;
- one of them (the red-haired doll) at 0.3 / 1 / 2 / 6 / 12 / 24 MP: matting 208 / 540 / 579
  / 596 / 627 / 688, guided 30 / 175 / 209 / 208 / 305 / 569 (clean: 48 at 2 MP, 253 at 24).

:data:`SOLVER_COST` covers each of them (per pixel of work, fixed, and per pixel of the photo;
matting at 1 MP: 855 MB) and is added for a folder whose edges use a solver
(tests/test_memory.py measures a real solve against it).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field

from mattectl.errors import InputError
from mattectl.imageio.options import EdgeMode
from mattectl.imageio.read import Header
from mattectl.imageio.refine import WORK_PIXELS

logger = logging.getLogger(__name__)

MB = 1 << 20
# Bytes per pixel of the photo: an 8-bit opaque photo's whole path, daemon and inference
# process together, and what 16 bits per sample and transparency add (measured above).
BYTES_PER_PIXEL = 45
WIDE_EXTRA = 30
TRANSPARENT_EXTRA = 12
KEY = "daemon.max_decode_mb"
NO_SOLVER = (0, 0, 0)
# What an edge mode's band solver adds (measured above): bytes per pixel of its working
# resolution (the photo's pixels, at most WORK_PIXELS), MB whatever the size, bytes per pixel
# of the photo.
SOLVER_COST: dict[EdgeMode, tuple[int, int, int]] = {
    EdgeMode.MATTING: (850, 0, 5),
    EdgeMode.GUIDED: (200, 0, 20),
}


def bytes_per_pixel(header: Header) -> int:
    return (BYTES_PER_PIXEL + (WIDE_EXTRA if header.wide else 0)
            + (TRANSPARENT_EXTRA if header.transparent else 0))


def estimate_mb(header: Header, file_bytes: int, edges: EdgeMode | None = None) -> int:
    """The memory, in MB, that matting this photo is expected to take at its peak, its edges
    finished as ``edges`` says (None: no band solver)."""
    per_work, fixed_mb, per_pixel = SOLVER_COST.get(edges, NO_SOLVER)
    solver = per_work * min(header.pixels, WORK_PIXELS) + fixed_mb * MB + per_pixel * header.pixels
    return math.ceil((header.pixels * bytes_per_pixel(header) + file_bytes + solver) / MB)


def most_pixels(limit_mb: int, header: Header, edges: EdgeMode | None = None) -> float:
    """About the most pixels a photo like ``header`` may have to fit in ``limit_mb``."""
    per_work, fixed_mb, per_pixel = SOLVER_COST.get(edges, NO_SOLVER)
    room = limit_mb * MB - fixed_mb * MB
    rate = bytes_per_pixel(header) + per_pixel
    if room > (rate + per_work) * WORK_PIXELS:  # past the solver's working resolution
        return (room - per_work * WORK_PIXELS) / rate
    return max(0.0, room / (rate + per_work))


def describe(header: Header) -> str:
    kind = ", 16-bit" if header.wide else ""
    kind += ", with transparency" if header.transparent else ""
    return f"{header.width}x{header.height} ({header.pixels / 1e6:.0f} MP{kind})"


@dataclass(eq=False)
class Lease:
    """Memory reserved for one photo; :meth:`release` gives it back (once; later calls do
    nothing)."""

    budget: MemoryBudget | None
    mb: int
    name: str
    seq: int = 0  # arrival order
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        if self.budget is not None:
            self.budget._give_back(self)


class MemoryBudget:
    """The megabytes that the photos in flight may take together. Each photo reserves its
    estimate (:meth:`admit`) before it is decoded and gives it back when its cutout is encoded
    or it fails; a photo that would need more than the whole budget is refused from its header.

    A photo that does not fit beside the photos in flight waits; the first to wait goes first.
    A later photo that fits may go ahead of it, but only into the room that the first waiter
    does not need: what was let in ahead of it, plus its own share, stays within the budget.
    So small photos go on beside a large one that waits, and the large one is never starved:
    it goes in at the latest when the photos that were in flight when it came are done.
    Nothing that holds a reservation ever waits for another, so waiting cannot deadlock:
    every reservation is given back when its photo ends, whatever thread ends it.
    ``limit_mb`` None: no limit, the counters only.
    """

    def __init__(self, limit_mb: int | None) -> None:
        self.limit_mb = limit_mb
        self._cond = threading.Condition()
        self._waiting: list[Lease] = []  # in arrival order
        self._held: list[Lease] = []
        self._arrivals = 0
        self.in_use_mb = 0
        self.in_flight = 0  # photos holding a reservation
        self.peak_in_flight = 0

    def admit(self, header: Header, file_bytes: int, name: str,
              edges: EdgeMode | None = None) -> Lease:
        """Reserve what ``header``'s photo needs with its edges finished as ``edges`` says,
        waiting while it does not fit; raises :class:`InputError` (saying what to do) when it
        can never fit."""
        need = estimate_mb(header, file_bytes, edges)
        if self.limit_mb is not None and need > self.limit_mb:
            most = most_pixels(self.limit_mb, header, edges) / 1e6
            raise InputError(
                f"{name}: {describe(header)} needs about {need} MB of memory to matte, more "
                f"than the {self.limit_mb} MB that {KEY} allows; not decoded. Reduce it to "
                f"{most:.0f} MP or less, or raise {KEY} to {need} or more if the machine has "
                "that much memory to spare")
        return self.reserve(need, name)

    def reserve(self, mb: int, name: str) -> Lease:
        """Reserve ``mb`` (at most the limit), waiting until it fits."""
        if self.limit_mb is not None and mb > self.limit_mb:
            raise ValueError(f"{mb} MB can never fit a budget of {self.limit_mb} MB")
        with self._cond:
            self._arrivals += 1
            lease = Lease(self, mb, name, self._arrivals)
            self._waiting.append(lease)
            waited = 0.0
            if not self._fits(lease):
                logger.info("%s: waiting for memory: needs about %d MB, %d of %d MB taken by "
                            "%d photo(s) in flight (%s)", name, mb, self.in_use_mb,
                            self.limit_mb, self.in_flight, KEY)
                start = time.monotonic()
                self._cond.wait_for(lambda: self._fits(lease))
                waited = time.monotonic() - start
            self._waiting.remove(lease)
            self._held.append(lease)
            self.in_use_mb += mb
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self._cond.notify_all()  # the first waiter may have changed
            logger.debug("%s: %d MB reserved%s; %d photo(s) in flight take %d MB of %s",
                         name, mb, f" after {waited:.1f} s" if waited else "", self.in_flight,
                         self.in_use_mb, self.limit_mb if self.limit_mb is not None else "any")
        return lease

    def _fits(self, lease: Lease) -> bool:
        if self.limit_mb is None:
            return True
        if self.in_use_mb + lease.mb > self.limit_mb:
            return False
        first = self._waiting[0]
        if first is lease:
            return True
        let_ahead = sum(held.mb for held in self._held if held.seq > first.seq)
        return let_ahead + lease.mb + first.mb <= self.limit_mb

    def _give_back(self, lease: Lease) -> None:
        with self._cond:
            if lease._released:
                return
            lease._released = True
            self._held.remove(lease)
            self.in_use_mb -= lease.mb
            self.in_flight -= 1
            self._cond.notify_all()
