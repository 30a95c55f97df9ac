"""What `mattectl models` does: list, pull, import and verify, one function each.

Installed weights live in ``<models dir>/<name>/`` (a file for U²-Net, a folder for BSHM);
``manifest.json`` there records what was installed. BSHM pulled from ModelScope stays in the
ModelScope cache too (hard links, no second copy on the same disk).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from mattectl.backends import modelscope_cache
from mattectl.backends.catalog import MODELS, ModelSpec, WeightFile, availability
from mattectl.config import Settings
from mattectl.errors import ChecksumError, DownloadError, MattectlError, ModelUnavailableError
from mattectl.modelstore import download, modelscope_pull
from mattectl.modelstore.digest import Digest, checksum_problem, digest_file, size_problem
from mattectl.modelstore.install import compare, install_file, install_folder, load_check
from mattectl.modelstore.manifest import ModelRecord, Published, load_manifest, save_record


class ChecksumState(StrEnum):
    PUBLISHED = "published"  # matched the publisher's checksum when installed
    RECORDED = "recorded"  # nothing published: recorded when installed
    CUSTOM = "custom"  # differs from the published file; installed with --custom
    UNRECORDED = "unrecorded"  # found, but not installed by mattectl: nothing to compare with
    CHANGED = "changed"  # a file's size is no longer the recorded one
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
    source: str | None
    recorded_at: str | None


@dataclass(frozen=True)
class VerifyResult:
    name: str
    ok: bool
    location: str | None
    findings: list[str] = field(default_factory=list)


def _published_kind(spec: ModelSpec) -> str:
    kinds = {"sha256" if f.sha256 else "md5" if f.md5 else "none" for f in spec.files}
    return "none" if kinds == {"none"} else "/".join(sorted(kinds - {"none"}))


def _files(spec: ModelSpec, location: Path) -> Iterator[tuple[WeightFile, Path]]:
    """Each file of the model as found at ``location`` (a hand-named .pth keeps its name)."""
    if spec.folder:
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

    def location(self, name: str) -> Path | None:
        return availability(MODELS[name], self.models_dir, self.options.paths.get(name),
                            self.modelscope_roots).weights

    def _record(self, name: str, location: Path | None) -> ModelRecord | None:
        record = load_manifest(self.models_dir).get(name)
        if record is None or location is None or Path(record.location) != location:
            return None
        return record

    # -- list ----------------------------------------------------------------------------------

    def state(self, name: str) -> ModelState:
        """What is installed, from ``stat`` calls and the manifest (nothing is hashed)."""
        spec = MODELS[name]
        location = self.location(name)
        record = self._record(name, location)
        sizes = {path.name: path.stat().st_size for _, path in _files(spec, location)} \
            if location is not None else {}
        if location is None:
            checksum = ChecksumState.MISSING
        elif record is None:
            checksum = ChecksumState.UNRECORDED
        elif any(record.files.get(n, Digest(-1, "", "")).size != s for n, s in sizes.items()):
            checksum = ChecksumState.CHANGED
        else:
            checksum = {Published.MATCH: ChecksumState.PUBLISHED,
                        Published.NONE: ChecksumState.RECORDED,
                        Published.DIFFERS: ChecksumState.CUSTOM}[record.published]
        return ModelState(name, spec.backend, spec.description,
                          str(location) if location else None,
                          sum(sizes.values()) if sizes else None, checksum, _published_kind(spec),
                          record.source if record else None,
                          record.recorded_at if record else None)

    def states(self) -> list[ModelState]:
        return [self.state(name) for name in MODELS]

    # -- pull ----------------------------------------------------------------------------------

    def pull(self, name: str, progress: download.Progress, *, url: str | None = None,
             offline: bool = False, custom: bool = False) -> ModelRecord:
        """Download a model (or, ``offline``, take it from a ModelScope cache), check it and
        install it. Raises DownloadError, ChecksumError or ModelUnavailableError."""
        spec = MODELS[name]
        if spec.modelscope_ids:
            if url is not None:
                raise DownloadError(f"{name} comes from ModelScope: set models.modelscope_endpoint "
                                    f"for a mirror, or use `mattectl models import {name} FOLDER`")
            return self._pull_modelscope(spec, progress, offline=offline)
        if offline:
            raise DownloadError(f"{name} is downloaded over HTTP; offline, use "
                                f"`mattectl models import {name} FILE`")
        urls = (url,) if url else spec.files[0].urls
        return self._pull_file(spec, urls, progress, custom=custom)

    def _pull_file(self, spec: ModelSpec, urls: tuple[str, ...], progress: download.Progress,
                   *, custom: bool) -> ModelRecord:
        expected = spec.files[0]
        target = self.models_dir / spec.name / spec.filename
        published: list[bool] = []

        failures = []
        for url in urls:

            def accept(path: Path, digest: Digest, url: str = url) -> None:
                published.append(compare(spec.filename, digest, expected, custom=custom))
                load_check(spec, path, self.options, label=url)

            try:
                # Checked by accept() so that --custom can take a file that differs.
                digest = download.download(url, target, replace(expected, md5=None, sha256=None),
                                           progress, accept)
            except (DownloadError, ChecksumError) as exc:
                failures.append(str(exc))
                continue
            return self._save(spec, target, url, published[-1], {spec.filename: digest})
        raise DownloadError("; ".join(failures) or f"no download address for {spec.name}")

    def _pull_modelscope(self, spec: ModelSpec, progress: download.Progress, *,
                         offline: bool) -> ModelRecord:
        model_id = self.options.bshm.model_id
        if offline:
            folder = modelscope_pull.cached((model_id, *spec.modelscope_ids),
                                            self.modelscope_roots)
        else:
            cache = modelscope_cache.pull_root(self.options.modelscope_cache, self.models_dir)
            folder = modelscope_pull.fetch(model_id, cache, self.options.modelscope_endpoint,
                                           progress)
        return self._install_folder(spec, folder, f"modelscope:{model_id} ({folder})",
                                    custom=False, link=True)

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
        location = self.location(name)
        if location is None:
            return VerifyResult(name, False, None, ["not installed"])
        record = self._record(name, location)
        findings: list[str] = []
        problems = [p for f, path in _files(spec, location)
                    if (p := self._check_file(f, path, record, findings))]
        if not problems:
            try:
                load_check(spec, location, self.options)
                findings.append("loads and runs")
            except MattectlError as exc:
                problems.append(str(exc))
        return VerifyResult(name, not problems, str(location), problems + findings)

    @staticmethod
    def _check_file(expected: WeightFile, path: Path, record: ModelRecord | None,
                    findings: list[str]) -> str | None:
        """A problem with one file, or None (what was checked goes to ``findings``)."""
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
                findings.append(f"{path.name}: matches the published checksum")
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
