"""The delivery manifest in an output folder (mattectl.store.manifest), on real files."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from mattectl.store.manifest import MANIFEST_NAME, DeliveryManifest


def test_deliveries_are_appended_and_found_by_folder_and_content(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    writer, reader = DeliveryManifest(out), DeliveryManifest(out)
    assert reader.lookup("studio", "a" * 64) is None  # no manifest yet
    writer.append("studio", "a" * 64, out / "shoot" / "a.png")
    writer.append("other", "b" * 64, out / "b.png")
    assert reader.lookup("studio", "a" * 64) == out / "shoot" / "a.png"
    assert reader.lookup("studio", "b" * 64) is None  # another folder's photo
    writer.append("studio", "c" * 64, out / "c.png")  # read on the next look, incrementally
    assert reader.lookup("studio", "c" * 64) == out / "c.png"
    writer.append("studio", "a" * 64, out / "a-1.png")  # delivered again: the latest counts
    assert reader.lookup("studio", "a" * 64) == out / "a-1.png"
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    assert [json.loads(line)["cutout"] for line in lines] == \
        ["shoot/a.png", "b.png", "c.png", "a-1.png"]


def test_odd_names_survive_the_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    odd = out / "new\nline ü \udcff.png"  # a newline, non-ASCII, and bytes that are not UTF-8
    DeliveryManifest(out).append("studio", "a" * 64, odd)
    assert DeliveryManifest(out).lookup("studio", "a" * 64) == odd
    assert len((out / MANIFEST_NAME).read_bytes().splitlines()) == 1


def test_a_line_still_being_written_and_damaged_lines_are_passed_over(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    manifest = DeliveryManifest(out)
    manifest.append("studio", "a" * 64, out / "a.png")
    with (out / MANIFEST_NAME).open("ab") as fh:
        fh.write(b"not json\n")
        fh.write(b'{"folder": "studio", "sha256": "' + b"b" * 64 + b'", "cutout": "b.p')
    reader = DeliveryManifest(out)
    assert reader.lookup("studio", "a" * 64) == out / "a.png"
    assert reader.lookup("studio", "b" * 64) is None
    with (out / MANIFEST_NAME).open("ab") as fh:
        fh.write(b'ng"}\n')  # the rest of the line arrives
    assert reader.lookup("studio", "b" * 64) == out / "b.png"


def test_a_replaced_manifest_is_read_afresh(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    manifest = DeliveryManifest(out)
    manifest.append("studio", "a" * 64, out / "a.png")
    assert manifest.lookup("studio", "a" * 64) is not None
    (out / MANIFEST_NAME).unlink()
    assert manifest.lookup("studio", "a" * 64) is None
    DeliveryManifest(out).append("studio", "b" * 64, out / "b.png")
    assert manifest.lookup("studio", "a" * 64) is None
    assert manifest.lookup("studio", "b" * 64) == out / "b.png"


def test_a_link_planted_in_its_place_is_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours\n")
    (out / MANIFEST_NAME).symlink_to(elsewhere)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        DeliveryManifest(out).append("studio", "a" * 64, out / "a.png")
    assert elsewhere.read_text() == "not yours\n"
    assert DeliveryManifest(out).lookup("studio", "a" * 64) is None


def test_appends_from_several_workers_stay_whole_lines(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()

    def deliver(worker: int) -> None:
        manifest = DeliveryManifest(out)
        for n in range(50):
            manifest.append("studio", f"{worker:02d}{n:062d}", out / f"{worker}-{n}.png")

    threads = [threading.Thread(target=deliver, args=(w,), name=f"test-w{w}") for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = DeliveryManifest(out)
    for w in range(4):
        for n in range(50):
            assert reader.lookup("studio", f"{w:02d}{n:062d}") == out / f"{w}-{n}.png"
    assert len((out / MANIFEST_NAME).read_bytes().splitlines()) == 200
