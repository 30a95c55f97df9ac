"""fsutil: reads and writes below a folder by descriptor, on a real filesystem: no symbolic link
below the folder is followed, a FIFO never blocks, temporary names fit any legal name."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mattectl.fsutil import (
    UnsafePathError,
    is_temp,
    open_dir,
    open_regular,
    read_beneath,
    sweep_temp_files,
    temp_path_for,
    write_file,
)

NAME_MAX = 255


def test_a_regular_file_below_the_root_is_read(tmp_path: Path) -> None:
    (tmp_path / "day" / "set").mkdir(parents=True)
    (tmp_path / "day" / "set" / "a.jpg").write_bytes(b"photo")
    assert read_beneath(tmp_path, "day/set/a.jpg") == b"photo"
    with pytest.raises(FileNotFoundError):
        read_beneath(tmp_path, "day/gone.jpg")


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a.jpg")
    outcome: list[BaseException] = []
    reader = threading.Thread(target=_record, args=(outcome, tmp_path, "a.jpg"))
    reader.start()
    reader.join(10)
    if reader.is_alive():  # the old read: blocked until a writer comes; be that writer
        os.close(os.open(tmp_path / "a.jpg", os.O_WRONLY | os.O_NONBLOCK))
        reader.join()
        pytest.fail("reading a FIFO blocked")
    [error] = outcome
    assert isinstance(error, UnsafePathError)
    assert error.strerror == f"{tmp_path / 'a.jpg'} is not a regular file (a FIFO)"


def _record(outcome: list[BaseException], root: Path, rel_path: str) -> None:
    try:
        read_beneath(root, rel_path)
    except BaseException as exc:  # handed to the test's thread
        outcome.append(exc)


@pytest.mark.parametrize("target", ["/dev/zero", "outside"])
def test_a_symbolic_link_is_not_followed(tmp_path: Path, target: str) -> None:
    root = tmp_path / "in"
    root.mkdir()
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"someone else's photo")
    (root / "a.jpg").symlink_to(outside if target == "outside" else target)
    with pytest.raises(UnsafePathError, match="is a symbolic link"):
        read_beneath(root, "a.jpg")
    with pytest.raises(UnsafePathError, match="is a symbolic link"):
        open_regular(root / "a.jpg")


def test_a_folder_swapped_for_a_link_is_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "in", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "a.jpg").write_bytes(b"someone else's photo")
    (root / "day").symlink_to(outside)
    with pytest.raises(UnsafePathError, match=r"in/day is a symbolic link"):
        read_beneath(root, "day/a.jpg")
    (root / "real").mkdir()
    for escape in ("../outside/a.jpg", "real/../../outside/a.jpg"):
        with pytest.raises(UnsafePathError, match="not a plain folder name"):
            read_beneath(root, escape)


def test_a_device_and_a_folder_are_not_regular_files(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError, match=r"is not a regular file \(a character device\)"):
        read_beneath(Path("/dev"), "null")
    (tmp_path / "sub.jpg").mkdir()
    with pytest.raises(UnsafePathError, match=r"is not a regular file \(a folder\)"):
        read_beneath(tmp_path, "sub.jpg")


def test_writes_stay_in_the_folder_opened_even_when_it_is_swapped_for_a_link(
        tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "sub").mkdir(parents=True)

    def swap(path: Path) -> None:  # between the temporary file and its final name
        (out / "sub").rename(out / "moved")
        (out / "sub").symlink_to(elsewhere)

    with open_dir(out) as top, top.descend(["sub"]) as folder:
        written = folder.write("a.png", b"cutout", "suffix", before=swap)
    assert written == out / "sub" / "a.png"  # the name it was opened under
    assert list(elsewhere.iterdir()) == []
    assert [p.name for p in (out / "moved").iterdir()] == ["a.png"]
    with open_dir(out) as top, pytest.raises(UnsafePathError, match="is a symbolic link"):
        top.descend(["sub"], create=True)


def test_temp_names_are_short_whatever_the_name(tmp_path: Path) -> None:
    long_name = "x" * (NAME_MAX - 4) + ".png"
    tmp = temp_path_for(tmp_path / long_name)
    assert len(tmp.name) == len(".mattectl-0123456789ab.tmp") and tmp.name.startswith(".")
    assert is_temp(tmp)
    assert is_temp(Path(".a.png.0badf00d.mattectl-tmp"))  # left by an older version
    assert not is_temp(Path("a.png")) and not is_temp(Path(".mattectl-notours.tmp"))


@pytest.mark.parametrize("stem", ["x" * (NAME_MAX - 4), "漢" * 77, "é" * 125],
                         ids=["255-bytes", "77-cjk", "125-accented"])
def test_a_name_of_any_legal_length_is_written(tmp_path: Path, stem: str) -> None:
    name = f"{stem}.png"
    assert len(os.fsencode(name)) <= NAME_MAX
    written = write_file(tmp_path / name, b"cutout")
    assert written == tmp_path / name and written.read_bytes() == b"cutout"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_sweep_removes_old_and_new_temp_names_and_follows_no_link(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (out / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    new, old = temp_path_for(out / "a.png"), out / "sub" / ".b.png.0badf00d.mattectl-tmp"
    for path in (new, old, out / "keep.png", elsewhere / temp_path_for(out / "c.png").name):
        path.write_bytes(b"")
    (out / "link").symlink_to(elsewhere)
    assert sorted(sweep_temp_files(out)) == sorted([new, old])
    assert sorted(p.name for p in out.rglob("*")) == ["keep.png", "link", "sub"]
    assert len(list(elsewhere.iterdir())) == 1  # behind a link: not ours to sweep
