"""`mattectl bench`: how fast each backend is here, per photo size, stage by stage."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mattectl.backends import spinning_threads
from mattectl.backends.cache import ModelCache
from mattectl.backends.probe import PROBE_MODELS
from mattectl.cli.common import ConfigOption, console, err_console, load_settings_or_defaults
from mattectl.config import Settings
from mattectl.errors import InputError
from mattectl.evaluation import bench as benchmark
from mattectl.evaluation import daemon_bench
from mattectl.evaluation.dataset import load_rgb
from mattectl.evaluation.report import render, write_report
from mattectl.evaluation.runner import choose_models, find_photos
from mattectl.fsutil import write_file
from mattectl.imageio.options import EdgeMode


def _thread_counts(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"--threads: expected numbers such as 1,2, got '{text}'") from None
    if any(n < 1 for n in counts):
        raise InputError("--threads: thread counts start at 1")
    return counts


def _prober(models: ModelCache) -> benchmark.Prober:
    prober = benchmark.Prober.find(models)
    if prober is None:
        raise InputError(f"no probe model is installed (tried {', '.join(PROBE_MODELS)}): "
                         "install one, or measure without the probe (--no-probe)")
    return prober


def _label(r: benchmark.BenchResult) -> str:
    return f"{r.backend} {r.size.label} b{r.batch} t{r.settings['threads'] or 'auto'}"


def _latency_table(results: list[benchmark.BenchResult]) -> Table:
    table = Table(title="latency per stage, ms p50 / p95 (probe: its own pass; the others: "
                  "the sequential run)")
    table.add_column("backend size batch")
    table.add_column("device")
    table.add_column("probe model")
    for stage in benchmark.STAGES:
        table.add_column(stage, justify="right")
    for r in results:
        stages = [f"{s.p50_ms:.0f} / {s.p95_ms:.0f}" if s else "off"
                  for s in r.stages.values()]
        table.add_row(_label(r), r.device, r.probe_model or "-", *stages)
    return table


def _bench_precisions(settings: Settings, backend: list[str] | None, formats: str, sizes: str,
                      count: int, rounds: int, json_out: Path | None) -> None:
    names = [f.strip() for f in formats.split(",") if f.strip()]
    known = ("float32", "bfloat16", "float16")
    if not names or any(n not in known for n in names):
        raise InputError(f"--precision: use {', '.join(known)}, comma-separated")
    size = benchmark.parse_sizes(sizes)[0]
    caches = {}
    for name in names:  # the same model in each format, each in its own process
        u2net = settings.models.u2net.model_copy(update={"precision": name})
        caches[name] = ModelCache(settings.models.model_copy(update={"u2net": u2net}),
                                  settings.models_dir)
    (model,) = choose_models(caches[names[0]], (backend or ["u2netp"])[:1])
    try:
        with spinning_threads():  # the model alone: nothing else wants the cores
            results = benchmark.profile_precisions(
                {name: cache.get(model) for name, cache in caches.items()}, size,
                benchmark.make_inputs(size, count), rounds=rounds)
    finally:
        for cache in caches.values():
            cache.unload_all()
    table = Table(title=f"{model}: the forward pass alone (one 320x320 input) and the whole "
                  f"predict at {size.label}, ms, medians of {rounds} round(s)")
    for column in ("precision", "device", "forward", "GFLOP/s", "predict", "vs float32"):
        table.add_column(column, justify="left" if column == "precision" else "right")
    base = next((r for r in results if r.precision == "float32"), results[0])
    for r in results:
        table.add_row(r.precision, r.device, f"{r.forward_ms:.0f}", f"{r.gflops:.0f}",
                      f"{r.predict_ms:.0f}", f"{base.predict_ms / r.predict_ms:.2f}x")
    console.print(table)
    spin = ("; the model's threads spin between operations here, as nothing else wants the "
            "cores (the daemon lets them sleep: mattectl.backends.spinning_threads)"
            if settings.models.isolation == "process"
            and all(r.device == "cpu" for r in results) else "")
    console.print(f"one forward pass is {results[0].gflop:.1f} GFLOP (convolutions, multiply "
                  f"and add counted apart){spin}", highlight=False)
    if json_out:
        rows = [{**asdict(r), "gflops": r.gflops} for r in results]
        write_file(json_out, json.dumps(rows, indent=1).encode(), "overwrite")


def _bench_daemon(settings: Settings, backend: list[str] | None, images: Path | None,
                  sizes: str, count: int, rounds: int, workers: int, clean_edges: bool,
                  edges: str | None, json_out: Path | None) -> None:
    models = ModelCache(settings.models, settings.models_dir)
    (name,) = choose_models(models, (backend or ["u2netp"])[:1])
    options = daemon_bench.DaemonBenchOptions(name, rounds, workers, clean_edges=clean_edges,
                                               edges=edges)
    with tempfile.TemporaryDirectory(prefix="mattectl-bench-photos-") as tmp:
        photos = find_photos(images) if images else []
        if images and len(photos) < 2:
            raise InputError(f"{images}: the daemon benchmark needs at least two photos")
        if not photos:
            size = benchmark.parse_sizes(sizes)[0]
            for i, data in enumerate(benchmark.make_inputs(size, max(count, 2))):
                photos.append(Path(tmp) / f"synthetic-{i:03d}.jpg")
                photos[-1].write_bytes(data)

        def progress(i: int, r: daemon_bench.Round) -> None:
            spinning = (f" (threads spinning {len(photos) / r.bare_spinning_s:.2f}, ratio "
                        f"{r.ratio_spinning:.2f})" if not math.isnan(r.bare_spinning_s) else "")
            err_console.print(
                f"round {i + 1}: bare loop {len(photos) / r.bare_s:.2f} img/s{spinning}, daemon "
                f"{len(photos) / r.drop_to_last_s:.2f} img/s, ratio {r.ratio:.2f}",
                highlight=False)

        err_console.print(f"the daemon ({workers} workers) against a bare {name} loop, "
                          f"{len(photos)} photos, {rounds} round(s)", highlight=False)
        result = daemon_bench.run(photos, settings.models, settings.models_dir, options,
                                  progress)
    data = result.to_json()
    table = Table(title="the daemon, drop to last cutout, against a bare model loop")
    for column in ("photos", "bare img/s", "daemon img/s", "ratio (median)", "per round"):
        table.add_column(column, justify="right")
    table.add_row(str(result.photos), f"{data['bare_img_per_s']:.2f}",
                  f"{data['daemon_img_per_s']:.2f}", f"{result.ratio:.2f}",
                  " ".join(f"{r:.2f}" for r in data["ratio_per_round"]))
    spun = data["ratio_spinning"] is not None  # None: the model ran inline
    if spun:
        table.add_row("", f"{data['bare_spinning_img_per_s']:.2f}", "",
                      f"{result.ratio_spinning:.2f}",
                      " ".join(f"{r:.2f}" for r in data["ratio_spinning_per_round"]))
    console.print(table)
    if spun:
        console.print("first row: the bare loop's model threads sleep when they wait, as the "
                      "daemon's do; second row: they spin (the model alone at its fastest, "
                      "but spinning threads take the cores the daemon finishes photos on)",
                      highlight=False)
    stages = ", ".join(f"{k} {v:.0f}" for k, v in data["median_stage_ms"].items())
    cpu = data["cpu_ms_per_photo"]
    console.print(f"job log stage p50, ms: {stages}\nCPU ms per photo: daemon "
                  f"{cpu['daemon_cpu_s']:.0f} + its model {cpu['inference_cpu_s']:.0f}; bare "
                  f"loop's model " + ("-" if cpu["bare_cpu_s"] is None  # inline: not measured
                                      else f"{cpu['bare_cpu_s']:.0f}"), highlight=False)
    if json_out:
        write_file(json_out, json.dumps(data, indent=1).encode(), "overwrite")


def _throughput_table(results: list[benchmark.BenchResult]) -> Table:
    table = Table(title="throughput, images/s (median of rounds)")
    table.add_column("backend size batch")
    for column in ("model", "sequential", "pipeline", "pipe/model", "RSS MiB", "GPU MiB"):
        table.add_column(column, justify="right")
    for r in results:
        gpu = f"{r.peak_gpu_mb:.0f}" if r.peak_gpu_mb is not None else "-"
        table.add_row(_label(r), f"{r.model_ips:.3f}", f"{r.sequential_ips:.3f}",
                      f"{r.pipeline_ips:.3f}", f"{r.ratio:.2f}", f"{r.peak_rss_mb:.0f}", gpu)
    return table


def bench(
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help="Model to measure (repeat for several) [default: every "
        "installed model].")] = None,
    sizes: Annotated[str, typer.Option(help="Photo sizes: 1080p, 4k, 12mp, 24mp or WxH, "
                                       "comma-separated.")] = "1080p,24mp",
    batch: Annotated[int, typer.Option(min=1, help="Photos per inference call.")] = 1,
    count: Annotated[int, typer.Option(min=1, help="Photos per measurement.")] = 6,
    rounds: Annotated[int, typer.Option(min=1, help="Repetitions; medians are shown.")] = 1,
    images: Annotated[Path | None, typer.Option(help="Folder of your own photos to measure "
                                                "with [default: synthetic portraits].")] = None,
    threads: Annotated[str | None, typer.Option(help="CPU threads for inference; several "
                                                "(e.g. 1,2) are compared in one run "
                                                "[default: models.threads].")] = None,
    probe: Annotated[bool, typer.Option(help="Time the rules engine's subject probe as a "
                                        "folder with rules runs it.")] = True,
    clean_edges: Annotated[bool, typer.Option(help="Refine edges as a folder with "
                                              "clean_edges = true does.")] = True,
    decode_workers: Annotated[int, typer.Option(min=1)] = 1,
    encode_workers: Annotated[int, typer.Option(min=1)] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")]
    = None,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report with a plot.")]
    = None,
    daemon: Annotated[bool, typer.Option(
        "--daemon", help="Measure the real daemon instead: drop --count photos (yours with "
        "--images, else synthetic at the first --sizes) into a `mattectl run` with this "
        "config's models, against a bare loop over the model, --rounds times.")] = False,
    workers: Annotated[int | None, typer.Option(
        min=1, help="With --daemon: daemon.workers [default: the config's].")] = None,
    edges: Annotated[EdgeMode | None, typer.Option(
        help="With --daemon: the folder's edges mode [default: the folder default].")] = None,
    precision: Annotated[str | None, typer.Option(
        "--precision", help="Compare number formats instead (e.g. float32,bfloat16; CUDA: "
        "float16): the forward pass alone with its GFLOP/s, and the whole predict at the "
        "first --sizes, --rounds times alternating.")] = None,
    config: ConfigOption = None,
) -> None:
    """Measure latency per stage and model-alone vs whole-pipeline throughput."""
    settings = load_settings_or_defaults(config)
    if precision:
        _bench_precisions(settings, backend, precision, sizes, count, rounds, json_out)
        return
    if daemon:
        _bench_daemon(settings, backend, images, sizes, count, rounds,
                      workers or settings.daemon.worker_count, clean_edges,
                      edges.value if edges else None, json_out)
        return
    models = ModelCache(settings.models, settings.models_dir)
    thread_counts = _thread_counts(threads)
    size_list = benchmark.parse_sizes(sizes)
    names = choose_models(models, backend)
    sources = [load_rgb(p) for p in find_photos(images)[:count]] if images else []
    if images and not sources:
        raise InputError(f"{images}: no photos")
    prober = _prober(models) if probe else None
    plan = benchmark.BenchOptions(count, rounds, batch, decode_workers, encode_workers,
                                  thread_counts, clean_edges)
    results = []
    for size in size_list:
        inputs = benchmark.make_inputs(size, count, sources)
        for name in names:
            err_console.print(f"measuring {name} at {size.label} ({size.width}x{size.height})",
                              highlight=False)
            results += benchmark.bench(models.get(name), size, inputs, plan, prober)
    models.unload_all()
    console.print(_latency_table(results))
    console.print(_throughput_table(results))
    notes = "\n".join(f"  {k}: {v}" for k, v in benchmark.STAGE_NOTES.items())
    console.print(f"stages:\n{notes}\nmodel = predict on decoded photos; pipeline = read, "
                  "decode, predict, refine, encode, write with the stages overlapped (no "
                  "probe: a fixed model, as `mattectl process` runs). Other load on the "
                  "machine affects these figures: compare ratios measured in one run.",
                  highlight=False)
    if json_out:
        write_file(json_out, json.dumps(benchmark.to_json(results), indent=1).encode(),
                   "overwrite")
    if report:
        write_report(report, render(bench=results))
        console.print(f"report: {report}", highlight=False)
