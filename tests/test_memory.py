"""The memory budget (daemon.max_decode_mb): estimates from the header, a photo that can never
fit refused before it is decoded, photos that wait for each other; through the pipeline, the
staged pipeline and the real daemon."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from mattectl import config
from mattectl.backends.cache import ModelCache
from mattectl.errors import InputError, ModelUnavailableError
from mattectl.imageio.options import EdgeMode, OutputOptions
from mattectl.imageio.read import Header
from mattectl.matting.memory import MemoryBudget, estimate_mb
from mattectl.matting.pipeline import Photo, PhotoPipeline, PhotoStages, Recipe
from mattectl.matting.stages import run_all
from mattectl.store.status import JobStatus

from . import samples
from .daemon_process import DaemonProcess, write_config
from .support import wait_for

MAX_PIXELS = 200_000_000  # the default daemon.max_pixels: a 100 MP photo passes it
TIMEOUT = 10.0


def header(width: int, height: int, *, wide: bool = False,
           transparent: bool = False) -> Header:
    return Header(width, height, wide, transparent, "PNG", "RGB")


def status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Start the kernel's peak-RSS mark (VmHWM) afresh from here (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return status_kb("VmHWM") is not None


@pytest.fixture
def models(tiny_models: Path) -> Iterator[ModelCache]:
    settings = config.parse({"models": {"dir": str(tiny_models), "isolation": "inline"}})
    cache = ModelCache(settings.models, settings.models_dir)
    yield cache
    cache.unload_all()


def pattern_png(width: int, height: int) -> bytes:
    image = Image.fromarray(samples.pattern(48, 32)).resize((width, height))
    return samples.encode(image, "PNG", compress_level=1)


# -- the estimate ---------------------------------------------------------------------------------

def test_the_estimate_follows_pixels_depth_transparency_and_the_file() -> None:
    photo = header(6000, 4000)
    assert estimate_mb(header(12000, 8000), 0) == pytest.approx(4 * estimate_mb(photo, 0), 1e-3)
    assert estimate_mb(header(6000, 4000, wide=True), 0) > estimate_mb(photo, 0)
    assert estimate_mb(header(6000, 4000, transparent=True), 0) > estimate_mb(photo, 0)
    assert estimate_mb(photo, 100 << 20) == estimate_mb(photo, 0) + 100
    # What was measured for a 100 MP 8-bit PNG (2.6 GB in the daemon, 1.2 GB in the inference
    # process, 0.3 GB of it the model's own) is covered.
    assert 3.5e3 < estimate_mb(header(12000, 8400), 0) < 5e3


def test_a_band_solver_adds_its_own_share() -> None:
    for photo in (header(640, 480), header(1920, 1080), header(6000, 4000)):
        clean = estimate_mb(photo, 0, EdgeMode.CLEAN)
        assert clean == estimate_mb(photo, 0) == estimate_mb(photo, 0, EdgeMode.OFF)
        assert estimate_mb(photo, 0, EdgeMode.MATTING) > estimate_mb(photo, 0, EdgeMode.GUIDED) \
            > clean
    # The solver works at most WORK_PIXELS: past that, its share grows slowly with the photo.
    share = [estimate_mb(header(w, h), 0, EdgeMode.MATTING) - estimate_mb(header(w, h), 0)
             for w, h in ((1920, 1080), (6000, 4000))]
    assert 900 < share[0] < share[1] < 1100


@pytest.mark.slow
@pytest.mark.parametrize("edges", [EdgeMode.MATTING, EdgeMode.GUIDED])
def test_the_solvers_share_covers_what_a_real_solve_takes(edges: EdgeMode,
                                                          shared_models: Path) -> None:
    """A photo with fine hair, its real u2netp alpha, the real solver: a second solve (imports
    and JIT paid by the first, as in a running daemon) stays within the estimate's share."""
    from mattectl.imageio.read import decode
    from mattectl.imageio.write import refine

    from .support import SHARED, need
    photo = min(need(SHARED / "data" / "hairgt" / "images").iterdir())
    cache = ModelCache(config.parse({"models": {"dir": str(shared_models),
                                                "isolation": "inline"}}).models, shared_models)
    try:
        image = decode(photo.read_bytes(), name=photo.name, max_pixels=MAX_PIXELS)
        scale = (1.0e6 / (image.width * image.height)) ** 0.5  # 1 MP: the most per pixel
        small = Image.fromarray(image.rgb).resize((round(image.width * scale),
                                                   round(image.height * scale)))
        buffer = io.BytesIO()
        small.save(buffer, "PNG")
        image = decode(buffer.getvalue(), name=photo.name, max_pixels=MAX_PIXELS)
        alpha = cache.get("u2netp").predict(image.rgb)
    finally:
        cache.unload_all()
    options = OutputOptions(edges=edges)
    refine(image, alpha, options, model_side=320)  # warm
    if not reset_peak_rss():
        pytest.skip("needs Linux's /proc/self/clear_refs to measure the peak")
    before = status_kb("VmRSS")
    refine(image, alpha, options, model_side=320)
    taken_mb = ((status_kb("VmHWM") or 0) - (before or 0)) / 1024
    size = header(image.width, image.height)
    share = estimate_mb(size, 0, edges) - estimate_mb(size, 0)
    assert 0 < taken_mb <= share, (taken_mb, share)


# -- the budget -----------------------------------------------------------------------------------

def test_a_photo_that_can_never_fit_is_refused_with_what_to_do() -> None:
    budget = MemoryBudget(1024)
    with pytest.raises(InputError) as refused:
        budget.admit(header(12000, 8400), 300_000, "studio/huge.png")
    assert re.match(r"studio/huge\.png: 12000x8400 \(101 MP\) needs about 43\d\d MB of memory "
                    r"to matte, more than the 1024 MB that daemon\.max_decode_mb allows; not "
                    r"decoded\. Reduce it to 2\d MP or less, or raise daemon\.max_decode_mb to "
                    r"43\d\d or more", str(refused.value)), refused.value
    assert (budget.in_use_mb, budget.in_flight) == (0, 0)


def test_a_photo_waits_until_it_fits_beside_the_photos_in_flight() -> None:
    budget = MemoryBudget(100)
    first = budget.reserve(60, "first")
    admitted = threading.Event()

    def second() -> None:
        budget.reserve(60, "second")
        admitted.set()

    thread = threading.Thread(target=second)
    thread.start()
    wait_for(lambda: budget._waiting, what="the second photo to wait")
    assert not admitted.is_set() and budget.in_flight == 1
    first.release()
    assert admitted.wait(TIMEOUT)
    thread.join(TIMEOUT)
    assert (budget.in_use_mb, budget.in_flight, budget.peak_in_flight) == (60, 1, 1)


def test_small_photos_pass_a_waiting_large_one_only_into_room_it_does_not_need() -> None:
    budget = MemoryBudget(100)
    held = budget.reserve(50, "held")
    large = threading.Thread(target=lambda: budget.reserve(60, "large").release())
    large.start()
    wait_for(lambda: budget._waiting, what="the large photo to wait")
    # 50 in flight, 60 waiting: 30 fits beside the 50 now and beside the 60 later: it goes.
    small = budget.reserve(30, "small")
    # Another 20 fits beside the 80 in flight, but would leave the large photo no room once
    # the 50 that was there before it is done (30 + 20 + 60 > 100): it waits.
    second = threading.Thread(target=lambda: budget.reserve(20, "second").release())
    second.start()
    wait_for(lambda: len(budget._waiting) == 2, what="the second small photo to wait")
    assert (budget.in_use_mb, budget.in_flight) == (80, 2)
    held.release()  # room for the large photo beside the small one: in it goes, not later
    large.join(TIMEOUT)
    small.release()
    second.join(TIMEOUT)
    assert not large.is_alive() and not second.is_alive()
    assert (budget.in_use_mb, budget.in_flight, budget.peak_in_flight) == (0, 0, 2)


def test_a_stream_of_small_photos_cannot_starve_a_large_one() -> None:
    budget = MemoryBudget(100)
    first = budget.reserve(40, "first")
    admitted = threading.Event()

    def large() -> None:
        budget.reserve(70, "large").release()
        admitted.set()

    thread = threading.Thread(target=large)
    thread.start()
    wait_for(lambda: budget._waiting, what="the large photo to wait")
    # Small photos keep coming, each let in beside the 40 while the large one waits...
    smalls = [budget.reserve(10, "small-1"), budget.reserve(10, "small-2"),
              budget.reserve(10, "small-3")]
    # ...but only 30 of them (100 - 70): the fourth waits, though 80 would fit now...
    fourth = threading.Thread(target=lambda: budget.reserve(10, "small-4").release())
    fourth.start()
    wait_for(lambda: len(budget._waiting) == 2, what="the fourth small photo to wait")
    first.release()
    # ...and when the 40 is gone the large one goes in.
    assert admitted.wait(TIMEOUT)
    for lease in smalls:
        lease.release()
    for waiter in (thread, fourth):
        waiter.join(TIMEOUT)
        assert not waiter.is_alive()
    assert (budget.in_use_mb, budget.in_flight) == (0, 0)


def test_a_reservation_comes_back_once() -> None:
    budget = MemoryBudget(100)
    lease = budget.reserve(70, "a")
    lease.release()
    lease.release()
    assert (budget.in_use_mb, budget.in_flight) == (0, 0)
    with pytest.raises(ValueError, match="never fit"):
        budget.reserve(101, "too big")


# -- through the pipeline -------------------------------------------------------------------------

def test_a_100_mp_png_is_refused_from_its_header_without_decoding_it(
        models: ModelCache) -> None:
    data = samples.huge_png(12_000, 8_400)  # 0.3 MB, 101 MP: 300 MB as pixels, 4 GB to matte
    assert len(data) < 1 << 20
    pipeline = PhotoPipeline(models, max_pixels=MAX_PIXELS, max_decode_mb=2048)
    measured = reset_peak_rss()
    before = status_kb("VmRSS")
    with pytest.raises(InputError, match=r"huge\.png: 12000x8400 \(101 MP\) needs about \d+ MB"
                                         r".* daemon\.max_decode_mb .*not decoded"):
        pipeline.decode(Photo("huge.png", data))
    assert (pipeline.memory.in_use_mb, pipeline.memory.in_flight) == (0, 0)
    if not measured or before is None:
        pytest.skip("no /proc/self/clear_refs here: the peak RSS cannot be measured")
    grown_mb = (status_kb("VmHWM") - before) / 1024
    assert grown_mb < 64, f"refusing it took {grown_mb:.0f} MB"


def test_a_photo_under_the_budget_gets_its_cutout_and_gives_its_memory_back(
        models: ModelCache, small_photo: Path) -> None:
    pipeline = PhotoPipeline(models, max_pixels=MAX_PIXELS, max_decode_mb=64)
    cutout = pipeline.run(Photo(small_photo.name, path=small_photo), Recipe("tiny"))
    with Image.open(small_photo) as source, Image.open(io.BytesIO(cutout.data)) as png:
        assert png.mode == "RGBA" and png.size == source.size
    assert (pipeline.memory.in_use_mb, pipeline.memory.in_flight) == (0, 0)
    assert pipeline.memory.peak_in_flight == 1


def test_a_photo_whose_model_fails_gives_its_memory_back(models: ModelCache) -> None:
    # 0.3 MP with the matting solver's share: about 280 MB, so both photos are admitted.
    pipeline = PhotoPipeline(models, max_pixels=MAX_PIXELS, max_decode_mb=600)
    photo = Photo("a.png", pattern_png(640, 480))
    with pytest.raises(ModelUnavailableError):
        pipeline.run(photo, Recipe("u2net"))  # not installed in the tiny models' folder
    outcomes = run_all(PhotoStages(pipeline, Recipe("u2net")), [photo, photo], batch=2)
    assert [o.ok for o in outcomes] == [False, False]
    assert (pipeline.memory.in_use_mb, pipeline.memory.in_flight) == (0, 0)


def test_large_photos_go_through_the_stages_one_at_a_time(models: ModelCache) -> None:
    # 1 MP each: about 43 MB estimated; two do not fit in 64 MB.
    pipeline = PhotoPipeline(models, max_pixels=MAX_PIXELS, max_decode_mb=64)
    photos = [Photo(f"{i}.png", pattern_png(1000, 1000)) for i in range(4)]
    # The cheap edge work: this is about admission; matting a synthetic pattern's fog of an
    # alpha costs seconds a photo (imageio/refine.py) and tells nothing here.
    cheap = Recipe("tiny", options=OutputOptions(edges=EdgeMode.CLEAN))
    outcomes = run_all(PhotoStages(pipeline, cheap), photos, batch=2,
                       decode_workers=2, encode_workers=2)
    assert sorted(o.item.name for o in outcomes if o.ok) == [p.name for p in photos]
    assert pipeline.memory.peak_in_flight == 1
    assert (pipeline.memory.in_use_mb, pipeline.memory.in_flight) == (0, 0)
    small = PhotoPipeline(models, max_pixels=MAX_PIXELS, max_decode_mb=64)
    outcomes = run_all(PhotoStages(small, Recipe("tiny")),
                       [Photo(f"{i}.png", pattern_png(200, 150)) for i in range(6)],
                       batch=3, decode_workers=2)
    assert all(o.ok for o in outcomes)
    assert small.memory.in_flight == 0


# -- through the real daemon ----------------------------------------------------------------------

IN_FLIGHT = re.compile(r"(\S+): \d+ MB reserved.*; (\d+) photo\(s\) in flight take")


def daemon_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_huge_photos_fail_from_their_header_and_large_ones_take_turns(
        tmp_path: Path, small_photo: Path) -> None:
    # Two 3 MP photos need about 130 MB each: one at a time in 200 MB. Two 101 MP PNGs of
    # 0.3 MB need 4.3 GB each: refused.
    # Clean edges: the peak below proves the 101 MP photos were never decoded, and the matting
    # solver's own memory (up to about 1 GB a photo at this size, budgeted) would blur it.
    write_config(tmp_path, daemon='max_decode_mb = 200\nlog_level = "debug"\nworkers = 2',
                 watch='edges = "clean"')
    proc = DaemonProcess(tmp_path)
    proc.start()
    inbox = tmp_path / "in"
    large = Image.open(small_photo).convert("RGB").resize((2000, 1500))
    try:
        files = {"huge-1.png": samples.huge_png(12_000, 8_400),
                 "huge-2.png": samples.huge_png(8_400, 12_000),  # not the same file
                 "large-1.jpg": samples.encode(large, "JPEG", quality=90),
                 "large-2.jpg": samples.encode(large.rotate(180), "JPEG", quality=90)}
        for name, data in files.items():
            (inbox / name).write_bytes(data)
        jobs = wait_for(lambda: (js := proc.jobs()) and len(js) == 4
                        and all(j.status in (JobStatus.DONE, JobStatus.FAILED) for j in js)
                        and js, timeout=240, what="the four photos to end")
        by_name = {j.rel_path: j for j in jobs}
        for name, size in (("huge-1.png", "12000x8400"), ("huge-2.png", "8400x12000")):
            job = by_name[name]
            assert job.status == JobStatus.FAILED
            assert re.search(rf"{name}: {size} \(101 MP\) needs about \d+ MB of memory .*"
                             r"daemon\.max_decode_mb allows; not decoded", job.error), job.error
        for name in ("large-1.jpg", "large-2.jpg"):
            job = by_name[name]
            assert job.status == JobStatus.DONE, job.error
            with Image.open(job.output_path) as out:
                assert out.mode == "RGBA" and out.size == (2000, 1500)
        log = proc.log_text()
        admitted = IN_FLIGHT.findall(log)
        assert sorted(name for name, _ in admitted) == ["large-1.jpg", "large-2.jpg"], log
        assert max(int(count) for _, count in admitted) == 1  # never both at once
        assert re.search(r"large-\d\.jpg: waiting for memory", log), log  # they did meet
        # Nothing of the 101 MP photos was decoded: the daemon never held their gigabytes.
        assert daemon_peak_rss_mb(proc.proc.pid) < 1024
        assert proc.cli("status").returncode == 0
    finally:
        assert proc.stop() == 0
