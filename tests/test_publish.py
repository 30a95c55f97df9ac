"""publish_cutout on a real filesystem: complete or absent, never outside the output folder,
whatever is swapped in while it writes; any legal name fits; a name that cannot work fails
without a retry."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest

from mattectl.errors import OutputError, OutputNameError
from mattectl.fsutil import is_temp
from mattectl.matting.publish import publish_cutout


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, not following symbolic links."""
    return [Path(d) / n for d, _dirs, names in os.walk(folder) for n in names]


def swap_for_link(folder: Path, link_to: Path) -> None:
    folder.rename(folder.with_name(f"{folder.name}-moved"))
    folder.symlink_to(link_to)


def test_a_sub_folder_swapped_for_a_link_while_writing_keeps_the_cutout_inside(
        tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "sub").mkdir(parents=True)
    # Swapped after the folder was opened and the temporary file written, just before the
    # final name: the old path-based rename went through the link.
    written = publish_cutout(b"cutout", out / "sub" / "a.png", root=out, policy="suffix",
                             name="sub/a.jpg",
                             before=lambda path: swap_for_link(out / "sub", elsewhere))
    assert written == out / "sub" / "a.png"
    assert list(elsewhere.iterdir()) == []
    assert files_under(out) == [out / "sub-moved" / "a.png"]  # complete, no temporary file
    assert (out / "sub-moved" / "a.png").read_bytes() == b"cutout"


def test_a_link_below_the_output_folder_is_refused_and_nothing_made_behind_it(
        tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "shoot").mkdir(parents=True)
    (out / "shoot" / "day1").symlink_to(elsewhere)
    with pytest.raises(OutputNameError, match=r"leads outside .*day1 is a symbolic link"):
        publish_cutout(b"cutout", out / "shoot" / "day1" / "set" / "a.png", root=out,
                       policy="suffix", name="shoot/day1/set/a.jpg")
    assert list(elsewhere.iterdir()) == []  # not even the "set" folder
    assert files_under(out) == []


def test_folders_flipped_to_links_during_a_stream_of_writes_never_let_one_out(
        tmp_path: Path) -> None:
    """The review's race: ``out/sub`` swapped with a link to another folder, back and forth,
    while cutouts are written. Each write lands inside ``out/`` or fails with a reason."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "sub").mkdir(parents=True)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            for step in (lambda: (out / "sub").rename(out / "held"),
                         lambda: (out / "sub").symlink_to(elsewhere),
                         lambda: (out / "sub").unlink(),
                         lambda: (out / "held").rename(out / "sub")):
                # A write may have made "sub" again meanwhile: go on flipping.
                with contextlib.suppress(OSError):
                    step()

    flipper = threading.Thread(target=flip)
    flipper.start()
    outcomes = {"written": 0, "retry": 0}
    refused: list[str] = []
    try:
        for i in range(300):
            try:
                publish_cutout(b"c" * 4096, out / "sub" / f"{i}.png", root=out,
                               policy="suffix", name=f"sub/{i}.jpg")
                outcomes["written"] += 1
            except OutputNameError as exc:
                refused.append(str(exc))
            except OutputError:
                outcomes["retry"] += 1  # the folder it opened was replaced meanwhile
    finally:
        stop.set()
        flipper.join()
    assert files_under(elsewhere) == [], outcomes
    assert all("leads outside" in reason for reason in refused)
    inside = files_under(out)
    assert not [p for p in inside if is_temp(p)], "a temporary file was left behind"
    assert len(inside) == outcomes["written"] and outcomes["written"] > 0
    assert all(p.read_bytes() == b"c" * 4096 for p in inside)  # complete


@pytest.mark.parametrize("stem", ["x" * 246, "漢" * 77], ids=["250-bytes", "77-cjk"])
def test_a_legal_name_near_the_limit_gets_its_cutout(tmp_path: Path, stem: str) -> None:
    target = tmp_path / "out" / f"{stem}.png"
    assert 235 <= len(os.fsencode(target.name)) <= 255
    written = publish_cutout(b"cutout", target, root=tmp_path / "out", policy="suffix",
                             name=f"{stem}.jpg")
    assert written == target and target.read_bytes() == b"cutout"
    assert files_under(tmp_path / "out") == [target]


def test_a_name_too_long_fails_for_good_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out" / f"{'x' * 252}.png"
    announced: list[Path] = []
    with pytest.raises(OutputNameError, match=r"file name too long \(256 bytes\)"):
        publish_cutout(b"cutout", target, root=tmp_path / "out", policy="suffix",
                       name="x.jpg", before=announced.append)
    assert announced == []  # no name recorded that can never appear
    assert files_under(tmp_path / "out") == []


def test_an_output_folder_that_is_a_file_is_retried(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_bytes(b"a file where the output folder should be")
    with pytest.raises(OutputError, match=r"cannot write .*: File exists"):
        publish_cutout(b"cutout", out / "a.png", root=out, policy="suffix", name="a.jpg")


def test_a_folder_where_the_cutout_goes_fails_for_good(tmp_path: Path) -> None:
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    with pytest.raises(OutputNameError, match="is a directory"):
        publish_cutout(b"cutout", tmp_path / "out" / "a.png", root=tmp_path / "out",
                       policy="overwrite", name="a.jpg")
