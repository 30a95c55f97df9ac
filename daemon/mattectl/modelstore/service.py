"""What `mattectl models` does: list, pull, import and verify, one function each.

Installed weights live in ``<models dir>/<name>/`` (a file for U²-Net, a folder for BSHM);
``manifest.json`` there records what was installed. BSHM pulled from ModelScope stays in the
ModelScope cache too (hard links, no second copy on the same disk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from mattectl.backends import modelscope_cache
from mattectl.backends.catalog import (
    MODELS,
    Availability,
    ModelSpec,
    Source,
    WeightFile,
    WeightSource,
    availability,
)
from mattectl.config import Settings
from mattectl.errors import DownloadError, MattectlError, ModelUnavailableError
from mattectl.modelstore import download, modelscope_pull
from mattectl.modelstore.digest import Digest, checksum_problem, digest_file, size_problem
from mattectl.modelstore.install import compare, install_file, install_folder, load_check
from mattectl.modelstore.manifest import ModelRecord, Published, load_manifest, save_record


class ChecksumState(StrEnum):
    PUBLISHED = "published"  # matched the publisher's checksum when installed
    RECORDED = "recorded"  # nothing published: recorded when installed
    CUSTOM = "custom"  # differs from the published file; installed with --custom
    UNRECORDED = "unrecorded"  # found, but not installed by mattectl: nothing to compare with
    CHANGED = "changed"  # a file's size is no longer the recorded (or shipped) one
    SHIPPED = "shipped"  # the file shipped inside mattectl: its sha256 is checked at every load
    MISSING = "missing"


@dataclass(frozen=True)
class ModelState:
    name: str
    backend: str
    description: str
    location: str | None
    size: int | None
    checksum: ChecksumState
    published_checksum: str  # what the publisher gives: "md5", "sha256" or "none"
    source: str | None  # where pull or import took it from
    recorded_at: str | None
    # Where the weights in use are: "package" (shipped with mattectl), "models dir", "path"
    # (models.paths), "modelscope cache"; None when missing.
    origin: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    name: str
    ok: bool
    location: str | None
    findings: list[str] = field(default_factory=list)


def _published_kind(spec: ModelSpec) -> str:
    kinds = {"sha256" if f.sha256 else "md5" if f.md5 else "none" for f in spec.files}
    return "none" if kinds == {"none"} else "/".join(sorted(kinds - {"none"}))


def _files(spec: ModelSpec, location: Path,
           origin: WeightSource | None = None) -> Iterator[tuple[WeightFile, Path]]:
    """Each file of the model as found at ``location`` (a hand-named .pth keeps its name), with
    what it must match: the shipped file's own size and sha256 when it comes from the package."""
    if origin == WeightSource.PACKAGE and spec.packaged is not None:
        yield replace(spec.packaged, name=location.name), location
    elif spec.folder:
        for f in spec.files:
            yield f, location / f.name
    else:
        yield spec.files[0], location


class ModelStore:
    def __init__(self, settings: Settings) -> None:
        self.options = settings.models
        self.models_dir = settings.models_dir
        self.modelscope_roots = modelscope_cache.search_roots(self.options.modelscope_cache,
                                                              self.models_dir)

    def found(self, name: str) -> Availability:
        return availability(MODELS[name], self.models_dir, self.options.paths.get(name),
                            self.modelscope_roots)

    def location(self, name: str) -> Path | None:
        return self.found(name).weights

    def _record(self, name: str, location: Path | None) -> ModelRecord | None:
        record = load_manifest(self.models_dir).get(name)
        if record is None or location is None or Path(record.location) != location:
            return None
        return record

    # -- list ----------------------------------------------------------------------------------

    def state(self, name: str) -> ModelState:
        """What is installed, from ``stat`` calls and the manifest (nothing is hashed)."""
        spec = MODELS[name]
        found = self.found(name)
        location, origin = found.weights, found.source
        record = self._record(name, location)
        files = list(_files(spec, location, origin)) if location is not None else []
        sizes = {path.name: path.stat().st_size for _, path in files}
        if location is None:
            checksum = ChecksumState.MISSING
        elif origin == WeightSource.PACKAGE:
            checksum = ChecksumState.SHIPPED if all(
                f.size == sizes[path.name] for f, path in files) else ChecksumState.CHANGED
        elif record is None:
            checksum = ChecksumState.UNRECORDED
        elif any(record.files.get(n, Digest(-1, "", "")).size != s for n, s in sizes.items()):
            checksum = ChecksumState.CHANGED
        else:
            checksum = {Published.MATCH: ChecksumState.PUBLISHED,
                        Published.NONE: ChecksumState.RECORDED,
                        Published.DIFFERS: ChecksumState.CUSTOM}[record.published]
        published = "sha256" if origin == WeightSource.PACKAGE else _published_kind(spec)
        return ModelState(name, spec.backend, spec.description,
                          str(location) if location else None,
                          sum(sizes.values()) if sizes else None, checksum, published,
                          record.source if record else None,
                          record.recorded_at if record else None,
                          origin.value if origin else None)

    def states(self) -> list[ModelState]:
        return [self.state(name) for name in MODELS]

    # -- pull ----------------------------------------------------------------------------------

    def pull(self, name: str, progress: download.Progress, *, url: str | None = None,
             offline: bool = False, custom: bool = False,
             on_source: Callable[[Source], None] = lambda source: None,
             timeout: float = download.TIMEOUT_S) -> ModelRecord:
        """Download a model (or, ``offline``, take it from a ModelScope cache), check it and
        install it, trying its sources in the catalog's order (``url``: that address alone);
        ``on_source`` hears of each source before it is tried. Raises DownloadError (naming
        every source and why it failed), ChecksumError or ModelUnavailableError."""
        spec = MODELS[name]
        if spec.modelscope_ids:
            if url is not None:
                raise DownloadError(f"{name} comes from ModelScope: set models.modelscope_endpoint "
                                    f"for a mirror, or use `mattectl models import {name} FOLDER`")
            return self._pull_modelscope(spec, progress, offline=offline, on_source=on_source)
        if offline:
            raise DownloadError(f"{name} is downloaded over HTTP; offline, use "
                                f"`mattectl models import {name} FILE`")
        sources = (Source("--url", (url,)),) if url else spec.files[0].sources
        return self._pull_file(spec, sources, progress, custom=custom, on_source=on_source,
                               timeout=timeout)

    def _pull_file(self, spec: ModelSpec, sources: tuple[Source, ...],
                   progress: download.Progress, *, custom: bool,
                   on_source: Callable[[Source], None], timeout: float) -> ModelRecord:
        expected = spec.files[0]
        target = self.models_dir / spec.name / spec.filename
        published: list[bool] = []
        trying: list[Source] = []

        def announce(source: Source) -> None:
            trying.append(source)
            on_source(source)

        def accept(path: Path, digest: Digest) -> None:
            published.append(compare(spec.filename, digest, expected, custom=custom))
            load_check(spec, path, self.options, label=" ".join(trying[-1].urls))

        try:
            # Checked by accept() so that --custom can take a file that differs.
            source, digest = download.fetch_first(
                sources, target, replace(expected, md5=None, sha256=None), progress, accept,
                on_source=announce, timeout=timeout)
        except DownloadError as exc:
            raise DownloadError(f"{exc}\nGet the file another way and install it with "
                                f"`mattectl models import {spec.name} FILE`, or give a mirror "
                                "with --url.") from None
        return self._save(spec, target, " ".join(source.urls), published[-1],
                          {spec.filename: digest})

    def _pull_modelscope(self, spec: ModelSpec, progress: download.Progress, *,
                         offline: bool, on_source: Callable[[Source], None]) -> ModelRecord:
        model_id = self.options.bshm.model_id
        if offline:
            folder = modelscope_pull.cached((model_id, *spec.modelscope_ids),
                                            self.modelscope_roots)
            return self._install_folder(spec, folder, f"modelscope:{model_id} ({folder})",
                                        custom=False, link=True)
        cache = modelscope_cache.pull_root(self.options.modelscope_cache, self.models_dir)
        endpoint = self.options.modelscope_endpoint
        failures = []
        # The configured id first, then the other names ModelScope publishes the model under.
        for candidate in dict.fromkeys((model_id, *spec.modelscope_ids)):
            on_source(Source(f"ModelScope {candidate}", (endpoint or "ModelScope's hub",)))
            try:
                folder = modelscope_pull.fetch(candidate, cache, endpoint, progress)
            except DownloadError as exc:
                failures.append(f"  {len(failures) + 1}. {exc}")
                continue
            return self._install_folder(spec, folder, f"modelscope:{candidate} ({folder})",
                                        custom=False, link=True)
        raise DownloadError(f"no source could deliver {spec.name} ({len(failures)} tried):\n"
                            + "\n".join(failures))

    # -- import --------------------------------------------------------------------------------

    def import_(self, name: str, source: Path, *, custom: bool = False) -> ModelRecord:
        """Install weights copied in by hand: a file (U²-Net) or a model folder (BSHM)."""
        spec = MODELS[name]
        source = source.resolve()
        if spec.folder:
            folder = source.parent if source.is_file() else source
            return self._install_folder(spec, folder, str(folder), custom=custom)
        if not source.is_file():
            raise ModelUnavailableError(f"{source} is not a file")
        published: list[bool] = []

        def check(path: Path, digest: Digest) -> None:
            published.append(compare(spec.filename, digest, spec.files[0], custom=custom))
            load_check(spec, path, self.options, label=str(source))

        target = self.models_dir / spec.name / spec.filename
        digest = install_file(source, target, check)
        return self._save(spec, target, str(source), published[-1], {spec.filename: digest})

    def _install_folder(self, spec: ModelSpec, source: Path, origin: str, *,
                        custom: bool, link: bool = False) -> ModelRecord:
        published: list[bool] = []

        def check(folder: Path, digests: dict[str, Digest]) -> None:
            published.append(all([compare(f.name, digests[f.name], f, custom=custom)
                                  for f in spec.files]))
            load_check(spec, folder, self.options, label=str(source))

        target = self.models_dir / spec.name
        digests = install_folder(spec, source, target, check, link=link)
        return self._save(spec, target, origin, published[-1], digests)

    def _save(self, spec: ModelSpec, location: Path, source: str, matches: bool,
              files: dict[str, Digest]) -> ModelRecord:
        published = Published.NONE if _published_kind(spec) == "none" else \
            Published.MATCH if matches else Published.DIFFERS
        record = ModelRecord(spec.name, str(location), source, published, files)
        save_record(self.models_dir, record)
        return record

    # -- verify --------------------------------------------------------------------------------

    def verify(self, name: str) -> VerifyResult:
        """Files present, sizes and checksums right, and the model loads and runs."""
        spec = MODELS[name]
        found = self.found(name)
        location = found.weights
        if location is None:
            return VerifyResult(name, False, None, ["not installed"])
        record = self._record(name, location)
        shipped = found.source == WeightSource.PACKAGE
        findings: list[str] = ["shipped with mattectl (the embedded default)"] if shipped else []
        problems = [p for f, path in _files(spec, location, found.source)
                    if (p := self._check_file(f, path, record, findings, shipped=shipped))]
        if not problems:
            try:
                load_check(spec, location, self.options)
                findings.append("loads and runs")
            except MattectlError as exc:
                problems.append(str(exc))
        return VerifyResult(name, not problems, str(location), problems + findings)

    @staticmethod
    def _check_file(expected: WeightFile, path: Path, record: ModelRecord | None,
                    findings: list[str], *, shipped: bool = False) -> str | None:
        """A problem with one file, or None (what was checked goes to ``findings``);
        ``shipped``: the file that came with mattectl, held to the checksum it ships with."""
        if not path.is_file():
            return f"{path.name} is missing"
        known = record.files.get(path.name) if record else None
        size = path.stat().st_size
        problem = size_problem(path.name, size, expected.size) or \
            size_problem(path.name, size, known.size if known else None)
        if problem:
            return problem  # not hashed, not loaded: the size already says what is wrong
        digest = digest_file(path)
        if record is None or record.published != Published.DIFFERS:
            if problem := checksum_problem(path.name, digest, expected):
                return problem
            if expected.published_checksum:
                whose = "checksum shipped with mattectl" if shipped else "published checksum"
                findings.append(f"{path.name}: matches the {whose}")
        if known is not None:
            if digest.sha256 != known.sha256:
                return (f"{path.name} changed since it was installed on {record.recorded_at} "
                        f"(sha256 {digest.sha256}, recorded {known.sha256})")
            findings.append(f"{path.name}: matches the checksum recorded on "
                            f"{record.recorded_at}")
        elif not expected.published_checksum:
            findings.append(f"{path.name}: no checksum to compare with (not installed by "
                            "`mattectl models pull` or `import`)")
        return None
