"""One path for every photo: the daemon, `mattectl process` and `mattectl eval --preset` give the
same cutout file and the same decision for the same photo (real u2netp, real daemon, real CLI),
and the rules package stays pure."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mattectl import checks
from mattectl.app import Daemon
from mattectl.store.status import JobStatus

from .clikit import DAEMON, mattectl
from .support import AS_ROOT, wait_for

PORTRAIT = "photo-1552374196-c4e7ffc6e126.jpeg"
SMALL = "Two_dancers.jpg"  # pasted small into a wide frame
# The shipped default preset takes different rules for them: the portrait whole, the dancers
# on a crop around them.
PHOTOS = [PORTRAIT, "wide-dancers.png"]


def _widen(image: Image.Image, mode: str, fill: int | tuple[int, ...]) -> Image.Image:
    """The image in the middle of a frame three times its size, of plain ``fill``."""
    canvas = Image.new(mode, (3 * image.width, 3 * image.height), fill)
    canvas.paste(image.convert(mode), (image.width, image.height))
    return canvas


def _photo_set(human_photos: list[Path], photos: Path, truths: Path) -> None:
    by_name = {p.name: p for p in human_photos}
    reference = by_name[PORTRAIT].parents[1] / "u2net_test_human_images_results"
    photos.mkdir()
    truths.mkdir()
    shutil.copyfile(by_name[PORTRAIT], photos / PORTRAIT)
    shutil.copyfile(reference / f"{Path(PORTRAIT).stem}.png",
                    truths / f"{Path(PORTRAIT).stem}.png")
    _widen(Image.open(by_name[SMALL]), "RGB", (200, 200, 200)).save(photos / "wide-dancers.png")
    truth = Image.open(reference / f"{Path(SMALL).stem}.png")
    _widen(truth, "L", 0).save(truths / "wide-dancers.png")


def _config(tmp_path: Path, models: Path) -> Path:
    path = tmp_path / "mattectl.toml"
    path.write_text(f"""
[daemon]
state_dir = "state"
heartbeat_s = 0.5
allow_root = {str(AS_ROOT).lower()}

[models]
dir = "{models}"
threads = 1

[[watch]]
name = "studio"
input = "in"
output = "out"
stability_s = 0.5
rules = "default"
output_template = "{{stem}}-{{model}}"
""")
    return path


@pytest.mark.slow
def test_daemon_process_and_eval_give_the_same_cutout_and_decision(
        tmp_path: Path, shared_models: Path, human_photos: list[Path]) -> None:
    photos, truths = tmp_path / "photos", tmp_path / "truths"
    _photo_set(human_photos, photos, truths)
    (tmp_path / "in").mkdir()
    cfg = _config(tmp_path, shared_models)

    # 1. The daemon, as `mattectl run` starts it (models in their own process).
    daemon = Daemon(checks.load(cfg))
    daemon.start()
    try:
        for name in PHOTOS:
            shutil.copyfile(photos / name, tmp_path / "in" / name)
        assert daemon.repo is not None
        repo = daemon.repo
        jobs = wait_for(lambda: (lambda done: done if len(done) == len(PHOTOS) else None)(
            [j for j in repo.list() if j.status == JobStatus.DONE]), timeout=240,
            what="both jobs to finish")
    finally:
        daemon.stop()
    by_daemon = {Path(j.rel_path).stem: j for j in jobs}
    rules = {stem: j.decision["rule"] for stem, j in by_daemon.items()}
    assert len(set(rules.values())) == 2, rules  # two different rules decided
    assert by_daemon["wide-dancers"].decision["crop"] is not None  # matted on a crop
    assert by_daemon[Path(PORTRAIT).stem].decision["crop"] is None

    # 2. `mattectl process` on the same config, its drop folder gone (it never reads it).
    shutil.rmtree(tmp_path / "in")
    done = mattectl("process", photos, "--out", tmp_path / "processed", "--config", cfg)
    assert done.returncode == 0, done.stderr
    for stem, job in by_daemon.items():
        assert job.output_path is not None
        assert job.output_path.name == f"{stem}-u2netp.png"  # the folder's template
        processed = tmp_path / "processed" / job.output_path.name
        assert processed.read_bytes() == job.output_path.read_bytes()
        line = next(x for x in done.stdout.splitlines() if x.startswith(f"{stem}."))
        assert f"rule {job.decision['rule']}:" in line

    # 3. `mattectl eval --preset`: the cutout it scores is the daemon's file.
    result = tmp_path / "eval.json"
    done = mattectl("eval", "--images", photos, "--alphas", truths, "--preset", "default",
                    "--cutouts", tmp_path / "eval", "--json", result, "--config", cfg)
    assert done.returncode == 0, done.stderr
    scored = {image["name"]: image["scores"]["preset:default"]
              for image in json.loads(result.read_text())["images"]}
    for stem, job in by_daemon.items():
        assert job.output_path is not None
        evaluated = tmp_path / "eval" / "preset-default" / f"{stem}.png"
        assert evaluated.read_bytes() == job.output_path.read_bytes()
        crop = " on a crop" if job.decision["crop"] else ""
        assert job.confidence is not None  # and eval reports the daemon's own figure
        assert scored[stem]["rule"] == (f"rule {job.decision['rule']}: {job.model}{crop}, "
                                        f"confidence {job.confidence:.2f}")


def test_rules_import_no_framework_backend_or_store() -> None:
    """The rules decide and nothing else: importing every module of the package loads neither a
    framework, OpenCV, the backends nor the job log."""
    modules = [f"mattectl.rules.{p.stem}" for p in (DAEMON / "mattectl" / "rules").glob("*.py")]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', "
        "'cv2', 'sqlalchemy') or m.startswith(('mattectl.backends', 'mattectl.store', "
        "'mattectl.config', 'mattectl.matting')))\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={"PYTHONPATH": str(DAEMON)}, check=True, timeout=120)
    assert done.stdout.strip() == "[]"
    assert len(modules) >= 6  # the test saw the package
