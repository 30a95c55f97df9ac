"""move_original on a real filesystem (and across two, with /dev/shm): never overwrites, never
leaves the photo in neither place, and follows no symbolic link planted below either folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mattectl.fsutil import UnsafePathError
from mattectl.jobs.disposition import move_original


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    (tmp_path / "in" / "day").mkdir(parents=True)
    (tmp_path / "in" / "day" / "a.jpg").write_bytes(b"the original")
    return tmp_path / "in"


def test_the_original_moves_beside_an_older_one_of_the_same_name(drop: Path,
                                                                  tmp_path: Path) -> None:
    failed = tmp_path / "failed"
    (failed / "day").mkdir(parents=True)
    (failed / "day" / "a.jpg").write_bytes(b"an older photo")
    moved = move_original(drop, "day/a.jpg", failed, "day/a.jpg")
    assert moved == failed / "day" / "a-1.jpg" and moved.read_bytes() == b"the original"
    assert (failed / "day" / "a.jpg").read_bytes() == b"an older photo"
    assert not (drop / "day" / "a.jpg").exists()


def test_a_link_planted_in_the_destination_does_not_redirect_the_original(
        drop: Path, tmp_path: Path) -> None:
    failed, elsewhere = tmp_path / "failed", tmp_path / "elsewhere"
    failed.mkdir()
    elsewhere.mkdir()
    (failed / "day").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match=r"failed/day is a symbolic link"):
        move_original(drop, "day/a.jpg", failed, "day/a.jpg")
    assert list(elsewhere.iterdir()) == []
    assert (drop / "day" / "a.jpg").read_bytes() == b"the original"  # stays where it was


def test_a_link_under_the_final_name_is_neither_followed_nor_replaced(
        drop: Path, tmp_path: Path) -> None:
    failed, victim = tmp_path / "failed", tmp_path / "victim.jpg"
    (failed / "day").mkdir(parents=True)
    victim.write_bytes(b"someone else's file")
    (failed / "day" / "a.jpg").symlink_to(victim)
    moved = move_original(drop, "day/a.jpg", failed, "day/a.jpg")
    assert moved == failed / "day" / "a-1.jpg" and moved.read_bytes() == b"the original"
    assert victim.read_bytes() == b"someone else's file"
    assert (failed / "day" / "a.jpg").is_symlink()


def test_a_source_swapped_for_a_link_moves_the_link_not_its_target(drop: Path,
                                                                   tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not the studio's")
    (drop / "day" / "a.jpg").unlink()
    (drop / "day" / "a.jpg").symlink_to(secret)
    moved = move_original(drop, "day/a.jpg", tmp_path / "failed", "day/a.jpg")
    assert moved.is_symlink() and secret.read_bytes() == b"not the studio's"
    assert not os.path.lexists(drop / "day" / "a.jpg")


@pytest.fixture
def other_filesystem(tmp_path: Path) -> Iterator[Path]:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the tests' tmp folder")
    with tempfile.TemporaryDirectory(dir=shm) as folder:
        yield Path(folder)


def test_across_filesystems_the_original_is_copied_then_removed(
        drop: Path, other_filesystem: Path) -> None:
    source = drop / "day" / "a.jpg"
    os.utime(source, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    source.chmod(0o640)
    processed = other_filesystem / "processed"
    (processed / "day").mkdir(parents=True)
    (processed / "day" / "a.jpg").write_bytes(b"an older photo")
    moved = move_original(drop, "day/a.jpg", processed, "day/a.jpg")
    assert moved == processed / "day" / "a-1.jpg" and moved.read_bytes() == b"the original"
    assert moved.stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert moved.stat().st_mode & 0o777 == 0o640
    assert (processed / "day" / "a.jpg").read_bytes() == b"an older photo"
    assert not source.exists()
    assert sorted(p.name for p in (processed / "day").iterdir()) == ["a-1.jpg", "a.jpg"]


def test_across_filesystems_a_fifo_is_not_copied(drop: Path, other_filesystem: Path) -> None:
    (drop / "day" / "a.jpg").unlink()
    os.mkfifo(drop / "day" / "a.jpg")
    with pytest.raises(UnsafePathError, match=r"is not a regular file \(a FIFO\)"):
        move_original(drop, "day/a.jpg", other_filesystem / "failed", "day/a.jpg")
    assert list((other_filesystem / "failed" / "day").iterdir()) == []
    assert (drop / "day" / "a.jpg").exists()
