#!/usr/bin/env python3
"""mattectl against rembg on the same U²-NetP weights: throughput, and quality against truth.

Our weights (the ones `mattectl process` loads) are exported to ONNX by `mattectl models
export-onnx` and given to rembg as its custom model (`rembg p -m u2net_custom -x
'{"model_path": ...}'`), so both sides run the same network: rembg on onnxruntime in float32,
mattectl on PyTorch in the precision its config chooses (default `auto`).

``speed`` (default): `rembg p` and `mattectl process` (the daemon's path, default config: clean
edges on) on the 19 photos of ../shared/data/u2net_official/test_human_images, rounds
alternating in one run (ABBA order), each a whole command as a person runs it (start-up and model
load included); prints photos per second of each (median of rounds), the ratio, the same from
the first to the last cutout written (start-up excluded), and each side's last cutouts scored
against the U-2-Net authors' published outputs for those photos (u2net_test_human_images_results,
the truth `mattectl eval`'s standard set uses).

``quality``: `rembg p`, `rembg p -a` (alpha matting) and `mattectl process` on
../shared/data/hairgt, each cutout's alpha scored against the hair-level truth with
mattectl.evaluation.metrics (MAD, SAD, Grad, Conn over the whole image, as `mattectl eval`),
beside `mattectl eval --backend u2netp` (the model's alpha alone) on the same photos.

rembg cannot live beside the daemon (its CLI pins gradio with pillow<13, fastapi, uvicorn<0.41,
watchdog<7): it runs from a venv of its own, made on first use from pyproject's `bench` extra.
Run from the repository root with the project's venv:

    .venv/bin/python scripts/bench_rembg.py [speed|quality|all] [--rounds 5]
        [--rembg-venv ~/.cache/mattectl/rembg-venv] [--work /tmp/bench-rembg]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "daemon"))

from mattectl.evaluation.metrics import measure  # noqa: E402
from mattectl.evaluation.truth import read_truth  # noqa: E402

DATA = REPO.parent / "shared" / "data"
HUMANS = DATA / "u2net_official" / "test_human_images"
AUTHORS = DATA / "u2net_official" / "u2net_test_human_images_results"
HAIR = DATA / "hairgt"
MATTECTL = Path(sys.executable).with_name("mattectl")
CACHE = Path(os.environ.get("MATTECTL_CACHE_DIR", Path.home() / ".cache" / "mattectl"))
ONNX_NAME = "u2netp_mattectl.onnx"
COLUMNS = (("MAD", "mae_image", 1e-3), ("SAD/1000", "sad_image", 1),
           ("Grad/1000", "grad_image", 1), ("Conn/1000", "conn_image", 1))


# ---------------------------------------------------------------- the two tools


def bench_requirements() -> list[str]:
    with (REPO / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["project"]["optional-dependencies"]["bench"]


def rembg_venv(folder: Path) -> Path:
    """The venv rembg runs from, made (or brought up to the `bench` extra) when needed."""
    wanted = bench_requirements()
    stamp = folder / ".mattectl-bench"
    digest = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:16]
    if not (stamp.is_file() and stamp.read_text() == digest and (folder / "bin/rembg").exists()):
        print(f"setting up rembg in {folder}: {', '.join(wanted)}", file=sys.stderr)
        if not (folder / "bin/python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(folder / "bin/python"), "-m", "pip", "install", "-q", *wanted],
                       check=True)
        stamp.write_text(digest)
    return folder


class Tools:
    """The commands compared; every run gets the same environment (an empty config file:
    mattectl's built-in defaults, whatever /etc holds; rembg's model folder holding our export)."""

    def __init__(self, venv: Path, work: Path, config: Path | None) -> None:
        self.venv = venv
        self.home = work / "rembg-home"  # rembg only loads custom models from under its home
        self.onnx = self.home / ONNX_NAME
        work.mkdir(parents=True, exist_ok=True)
        if config is None:
            config = work / "defaults.toml"
            config.write_text("# empty: mattectl's built-in defaults\n")
        self.config = config.resolve()
        self.env = {**os.environ, "MATTECTL_CONFIG": str(self.config),
                    "U2NET_HOME": str(self.home)}
        self.env.pop("OMP_NUM_THREADS", None)  # each framework picks its own thread count

    def export(self) -> str:
        done = self._run([str(MATTECTL), "models", "export-onnx", str(self.onnx)])
        return " ".join(done.stdout.split())

    def rembg(self, photos: Path, out: Path, *extra: str) -> list[str]:
        extras = json.dumps({"model_path": str(self.onnx)})
        return [str(self.venv / "bin/rembg"), "p", "-m", "u2net_custom", "-x", extras, *extra,
                str(photos), str(out)]

    def mattectl(self, photos: Path, out: Path) -> list[str]:
        return [str(MATTECTL), "process", str(photos), "--out", str(out)]

    def timed(self, command: list[str], out: Path,
              check: bool = True) -> tuple[float, float, str | None]:
        """Wall seconds of the command, the CPU seconds it and its children (the model's
        process) used (which hardly moves when other work shares the cores), and its error
        output when it failed (``check``: exit instead)."""
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = self._run(command, check)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu, done.stderr[-3000:] if done.returncode else None

    def _run(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True)
        if done.returncode != 0 and check:
            sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
        return done


def environment(tools: Tools) -> list[str]:
    """What the figures depend on: CPUs, threads, number formats, versions."""
    probe = ("import json, os, pathlib, torch\n"
             "from mattectl.backends.cache import ModelCache\n"
             "from mattectl.cli.common import load_settings_or_defaults\n"
             "s = load_settings_or_defaults(pathlib.Path(os.environ['MATTECTL_CONFIG']))\n"
             "m = s.models.model_copy(update={'isolation': 'inline'})\n"
             "b = ModelCache(m, s.models_dir).get('u2netp'); b.load()\n"
             "print(json.dumps([b.precision, torch.get_num_threads(), torch.__version__, "
             "str(b.weights)]))")
    got = subprocess.run([sys.executable, "-c", probe], env=tools.env, capture_output=True,
                         text=True, check=True)
    precision, threads, torch_version, weights = json.loads(got.stdout.splitlines()[-1])
    versions = subprocess.run(
        [str(tools.venv / "bin/python"), "-c", "import importlib.metadata as m, os; "
         "import onnxruntime as o; print(m.version('rembg'), o.__version__)"],
        capture_output=True, text=True, check=True).stdout.split()
    flags = set()
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    wide = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{len(os.sched_getaffinity(0))} usable, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; flags: {' '.join(wide)}",
        f"mattectl: PyTorch {torch_version}, {threads} threads, precision {precision}, "
        f"weights {weights}",
        f"environment of both: MATTECTL_CONFIG={tools.config} U2NET_HOME={tools.home}",
        f"rembg {versions[0]}: onnxruntime {versions[1]} float32, its default threads "
        "(one per physical core); model u2net_custom = the export below",
        f"export: {tools.export()}",
    ]


# ---------------------------------------------------------------- reading and scoring alpha


def cutout_alpha(path: Path) -> np.ndarray:
    """A cutout's alpha (RGBA PNG), float in [0, 1]."""
    image = Image.open(path)
    if "A" not in image.getbands():
        sys.exit(f"{path} has no alpha channel")
    return np.asarray(image.getchannel("A"), np.float32) / 255


def truth_alpha(path: Path) -> np.ndarray:
    """A truth file read as `mattectl eval` reads it (mattectl.evaluation.truth)."""
    return read_truth(path.read_bytes(), name=path.name).alpha


def score(pred: np.ndarray, true: np.ndarray, name: str) -> dict[str, float]:
    if pred.shape != true.shape:
        sys.exit(f"{name}: cutout {pred.shape} and truth {true.shape} differ in size")
    return measure(pred, true)


def means(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}


# ---------------------------------------------------------------- speed


@dataclass
class Round:
    seconds: float  # the whole command
    cpu: float  # CPU seconds of the command and its children
    steady: float  # photos per second, first to last cutout written


def steady_rate(out: Path) -> float:
    stamps = sorted(p.stat().st_mtime for p in out.rglob("*.png"))
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if stamps[-1] > stamps[0] else 0.0


def authors_score(out: Path) -> dict[str, float]:
    """Each cutout's alpha against the authors' published output for its photo: MAD, SAD/1000,
    and the IoU of the two at 0.5."""
    rows = []
    for photo in sorted(HUMANS.iterdir()):
        pred = cutout_alpha(out / f"{photo.stem}.png")
        true = truth_alpha(AUTHORS / f"{photo.stem}.png")
        if pred.shape != true.shape:
            sys.exit(f"{photo.name}: cutout {pred.shape} and reference {true.shape} differ")
        diff = np.abs(pred - true)
        a, b = pred >= 0.5, true >= 0.5
        rows.append({"mad": float(diff.mean()), "sad": float(diff.sum()) / 1000,
                     "iou": float((a & b).sum() / max(1, (a | b).sum()))})
    return means(rows)


def speed(tools: Tools, work: Path, rounds: int) -> None:
    count = sum(1 for _ in HUMANS.iterdir())
    sides = {"rembg p": lambda out: tools.rembg(HUMANS, out),
             "mattectl process": lambda out: tools.mattectl(HUMANS, out)}
    results: dict[str, list[Round]] = {name: [] for name in sides}
    print(f"\n{count} photos of {HUMANS}, {rounds} rounds alternating (ABBA)")
    for r in range(rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for name in order:
            out = work / "speed" / name.split()[0]
            seconds, cpu, _ = tools.timed(sides[name](out), out)
            results[name].append(Round(seconds, cpu, steady_rate(out)))
            print(f"  round {r + 1} {name:17} {seconds:6.2f} s  {count / seconds:5.2f} photos/s"
                  f"  (first to last cutout {results[name][-1].steady:5.2f}/s)"
                  f"  CPU {cpu / count:5.2f} s/photo", flush=True)
    rate = {n: count / statistics.median(x.seconds for x in rs) for n, rs in results.items()}
    steady = {n: statistics.median(x.steady for x in rs) for n, rs in results.items()}
    cpu = {n: statistics.median(x.cpu for x in rs) / count for n, rs in results.items()}
    print("\n| command | photos/s (whole command) | photos/s (first to last cutout) "
          "| CPU s/photo | MAD vs authors | SAD/1000 | IoU |\n|---|---|---|---|---|---|---|")
    for name in sides:
        s = authors_score(work / "speed" / name.split()[0])
        print(f"| {name} | {rate[name]:.2f} | {steady[name]:.2f} | {cpu[name]:.2f} "
              f"| {s['mad']:.4f} | {s['sad']:.1f} | {s['iou']:.4f} |")
    m, r = "mattectl process", "rembg p"
    print(f"\nmattectl / rembg (medians of rounds): {rate[m] / rate[r]:.2f}x whole command, "
          f"{steady[m] / steady[r]:.2f}x first to last cutout, {cpu[r] / cpu[m]:.2f}x by CPU "
          "time per photo")
    print("commands (U2NET_HOME, MATTECTL_CONFIG as above):\n  "
          + "\n  ".join(shlex.join(sides[n](work / "speed" / "OUT")) for n in sides))


# ---------------------------------------------------------------- quality


def eval_means(tools: Tools, work: Path) -> tuple[dict[str, float], list[str]]:
    """`mattectl eval --backend u2netp` on the hair set: its means, and the command."""
    report = work / "quality" / "eval.json"
    command = [str(MATTECTL), "eval", "--images", str(HAIR / "images"), "--alphas",
               str(HAIR / "alphas"), "--backend", "u2netp", "--json", str(report)]
    done = subprocess.run(command, env=tools.env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"mattectl eval failed: {done.stderr[-2000:]}")
    return json.loads(report.read_text())["means"]["u2netp"], command


def score_folder(out: Path, names: list[str]) -> tuple[dict[str, float] | None, str]:
    """Mean scores of the cutouts in ``out`` against the hair truth, and per-photo MADs; None
    when a photo has no cutout (the command failed on it)."""
    missing = [n for n in names if not (out / f"{n}.png").is_file()]
    if missing:
        return None, f"no cutout for {', '.join(missing)}"
    rows = [score(cutout_alpha(out / f"{n}.png"),
                  truth_alpha(next((HAIR / "alphas").glob(f"{n}.*"))), n) for n in names]
    return means(rows), "MAD " + " ".join(f"{n}={r['mae_image'] / 1000:.4f}"
                                         for n, r in zip(names, rows, strict=True))


def quality(tools: Tools, work: Path, reuse_rembg: bool) -> None:
    photos = HAIR / "images"
    names = sorted(p.stem for p in photos.iterdir())
    outs = {"rembg p": work / "quality/rembg-p", "rembg p -a": work / "quality/rembg-p-a",
            "mattectl process": work / "quality/mattectl"}
    runs = {"rembg p": tools.rembg(photos, outs["rembg p"]),
            "rembg p -a": tools.rembg(photos, outs["rembg p -a"], "-a"),
            "mattectl process": tools.mattectl(photos, outs["mattectl process"])}
    table: dict[str, dict[str, float] | None] = {}
    seconds: dict[str, str] = {}
    for label, command in runs.items():
        reused = reuse_rembg and label.startswith("rembg") and score_folder(
            outs[label], names)[0] is not None
        if reused:
            seconds[label] = "reused"
        else:
            wall, _, error = tools.timed(command, outs[label], check=False)
            seconds[label] = f"{wall:.1f} s" + (" (failed)" if error else "")
            if error:
                print(f"  {label} failed:\n{error}", file=sys.stderr)
        table[label], detail = score_folder(outs[label], names)
        print(f"  {label}: {seconds[label]}; {detail}", flush=True)
    evaluated, eval_command = eval_means(tools, work)
    table["mattectl eval --backend u2netp (model alone)"] = evaluated
    print(f"\n{len(names)} photos of {HAIR}, means over the whole image "
          f"(mattectl config: {tools.config}):\n")
    print("| same U²-NetP weights | " + " | ".join(c[0] for c in COLUMNS) + " | whole run |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for label, m in table.items():
        cells = " | ".join("-" if m is None else
                           f"{m[key] * scale:.4f}" if scale != 1 else f"{m[key]:.2f}"
                           for _, key, scale in COLUMNS)
        print(f"| {label} | {cells} | {seconds.get(label, '-')} |")
    print("commands (U2NET_HOME, MATTECTL_CONFIG as above):\n  "
          + "\n  ".join(shlex.join(c) for c in [*runs.values(), eval_command]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=("speed", "quality", "all"), default="speed")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rembg-venv", type=Path, default=CACHE / "rembg-venv")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-rembg"))
    parser.add_argument("--config", type=Path, help="mattectl's config for its side "
                        "[default: none, its built-in defaults]")
    parser.add_argument("--reuse-rembg", action="store_true", help="quality: score rembg's "
                        "cutouts left in --work by an earlier run instead of running it again")
    args = parser.parse_args()
    if not MATTECTL.exists():
        sys.exit(f"run with the project's venv: {MATTECTL} is missing")
    tools = Tools(rembg_venv(args.rembg_venv), args.work, args.config)
    print("\n".join(environment(tools)))
    if args.mode in ("speed", "all"):
        speed(tools, args.work, args.rounds)
    if args.mode in ("quality", "all"):
        quality(tools, args.work, args.reuse_rembg)


if __name__ == "__main__":
    main()
