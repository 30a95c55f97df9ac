"""The one per-photo path: bytes -> decoded photo -> facts and decision -> alpha -> cutout file.

Every caller runs these steps: the daemon's workers (:meth:`PhotoPipeline.run`, one photo per
job), ``mattectl process`` and ``mattectl bench`` (the same steps as the stages of a
:class:`~mattectl.matting.stages.StagedPipeline`, see :class:`PhotoStages`), and
``mattectl eval --preset``. Where a step's result is written is the caller's: the daemon names
it from the folder's template and records it in the job log, ``process`` writes the same names
under ``--out`` (see :mod:`mattectl.matting.publish`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mattectl.backends.base import MattingBackend
from mattectl.config import WatchConfig
from mattectl.errors import InputError
from mattectl.imageio import write as output
from mattectl.imageio.options import OutputOptions
from mattectl.imageio.read import DecodedImage, decode, read_header
from mattectl.matting.confidence import confidence
from mattectl.matting.memory import Lease, MemoryBudget
from mattectl.matting.planner import FolderRules, Matte, RulePlanner
from mattectl.matting.stages import ms_since


@dataclass(frozen=True)
class Photo:
    name: str  # how errors and rules name it: its path inside the drop folder, '/'-separated
    data: bytes | None = None
    path: Path | None = None  # read by :meth:`PhotoPipeline.decode` when ``data`` is None


@dataclass(frozen=True)
class Recipe:
    """How a folder wants its photos matted: a fixed ``model``, or ``rules`` choosing one per
    photo (``model`` is then not used), and how the cutout is written."""

    model: str = "u2netp"
    rules: FolderRules | None = None
    options: OutputOptions = field(default_factory=OutputOptions)

    @classmethod
    def of(cls, watch: WatchConfig) -> Recipe:
        return cls(watch.model, FolderRules.of(watch), watch.output_options)


@dataclass(frozen=True)
class Decoded:
    image: DecodedImage
    ms: float
    lease: Lease | None = field(default=None, repr=False, compare=False)

    def release(self) -> None:
        """Give back the memory reserved for this photo (see :class:`MemoryBudget`): done by
        :meth:`PhotoPipeline.finish`, and by whoever drops a decoded photo unfinished."""
        if self.lease is not None:
            self.lease.release()


@dataclass(frozen=True)
class Cutout:
    data: bytes  # the finished file, in ``options.format``
    width: int  # of the photo (a trimmed output is smaller)
    height: int
    model: str
    device: str
    decode_ms: float
    inference_ms: float  # the chosen model's own time, probe included
    encode_ms: float  # compositing, clean edges and encoding
    refine_ms: float  # of which clean edges (and compositing)
    options: OutputOptions  # what it was written with (a rule's output settings applied)
    decision: dict[str, Any] | None = None  # the rules' decision, when rules chose the model
    precision: str | None = None  # the number format the model ran in
    confidence: float | None = None  # 0..1, how sure the model was (matting.confidence)

    @property
    def extension(self) -> str:
        return self.options.extension


def decode_photo(data: bytes, *, name: str, max_pixels: int, min_side: int) -> DecodedImage:
    """Decode a photo and refuse one too small to matte; raises InputError naming it."""
    image = decode(data, name=name, max_pixels=max_pixels)
    if min(image.width, image.height) < min_side:
        raise InputError(f"{name}: {image.width}x{image.height} is too small to matte "
                         f"(daemon.min_side = {min_side})")
    return image


class Models(Protocol):
    """Where the pipeline gets a model's backend: the daemon's ModelCache, or (``bench``) the
    one backend being measured."""

    def get(self, name: str) -> MattingBackend: ...


class PhotoPipeline:
    """The steps of one photo. Raises InputError for a bad photo, ModelUnavailableError (or
    RuleBlockedError) when no model can matte it, BackendError when the model fails.

    ``max_decode_mb`` bounds the memory of the photos in flight together, from their headers
    (see :class:`~mattectl.matting.memory.MemoryBudget`; None: no bound): :meth:`decode`
    reserves a photo's share, waiting while it does not fit, and :meth:`finish` gives it back.
    A decoded photo that is dropped unfinished must be given back with
    :meth:`Decoded.release` (:meth:`run` and :class:`PhotoStages` do)."""

    def __init__(self, models: Models, *, max_pixels: int, min_side: int = 16,
                 planner: RulePlanner | None = None, max_decode_mb: int | None = None) -> None:
        self.models = models
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.planner = planner
        self.memory = MemoryBudget(max_decode_mb)

    def run(self, photo: Photo, recipe: Recipe) -> Cutout:
        decoded = self.decode(photo, recipe.options)
        try:
            return self.finish(decoded, self.matte(decoded, photo.name, recipe), recipe)
        finally:
            decoded.release()

    # -- the steps, in order -------------------------------------------------------------------

    def decode(self, photo: Photo, options: OutputOptions | None = None) -> Decoded:
        """The decoded photo, holding its share of the memory budget (refused from its header
        when it can never fit; waits while it does not fit beside the photos in flight). The
        share counts the edges' band solver that ``options`` (the folder's) asks for."""
        start = time.perf_counter()
        data = photo.data if photo.data is not None else _read(photo)
        header = read_header(data, name=photo.name, max_pixels=self.max_pixels)
        ms = ms_since(start)
        edges = options.edges if options is not None and options.clean_edges else None
        lease = self.memory.admit(header, len(data), photo.name, edges)
        start = time.perf_counter()  # the wait for memory is not decoding time
        try:
            image = decode_photo(data, name=photo.name, max_pixels=self.max_pixels,
                                 min_side=self.min_side)
        except BaseException:
            lease.release()
            raise
        return Decoded(image, ms + ms_since(start), lease)

    def matte(self, decoded: Decoded, name: str, recipe: Recipe) -> Matte:
        """Facts, decision and the chosen model's alpha for the whole frame."""
        if recipe.rules is not None:
            if self.planner is None:
                raise AssertionError("a folder uses rules, but the pipeline has no rule planner")
            return self.planner.matte(decoded.image.rgb, recipe.rules, name)
        return self.matte_batch([decoded], recipe.model)[0]

    def matte_batch(self, batch: list[Decoded], model: str) -> list[Matte]:
        """One fixed model over several photos in one call (a GPU likes batches)."""
        backend = self.models.get(model)
        device = backend.load()  # a first load is not inference time
        start = time.perf_counter()
        alphas = backend.predict_batch([d.image.rgb for d in batch])
        ms = ms_since(start)
        return [Matte(alpha, model, device, ms, None, backend.spec.input_size,
                      precision=backend.precision, confidence=confidence(alpha))
                for alpha in alphas]

    def finish(self, decoded: Decoded, matte: Matte, recipe: Recipe) -> Cutout:
        """Clean edges and the encoded file, as the folder (or the deciding rule) asks."""
        options = recipe.options
        if matte.output is not None:  # the deciding rule's output keys replace the folder's
            options = matte.output.apply(options)
        start = time.perf_counter()
        image = decoded.image
        try:
            cut = output.refine(image, matte.alpha, options, model_side=matte.model_side)
            refine_ms = ms_since(start)
            encoded = output.encode_cut(image, cut, options)
        finally:
            decoded.release()
        return Cutout(encoded.data, image.width, image.height, matte.model, matte.device,
                      decoded.ms, matte.inference_ms, ms_since(start), refine_ms, options,
                      matte.decision, matte.precision, matte.confidence)


def _read(photo: Photo) -> bytes:
    if photo.path is None:
        raise ValueError(f"{photo.name}: neither a path nor data")
    try:
        return photo.path.read_bytes()
    except OSError as exc:
        raise InputError(f"{photo.name}: cannot read: {exc.strerror or exc}") from None


class PhotoStages:
    """:class:`PhotoPipeline`'s steps as the stages of a
    :class:`~mattectl.matting.stages.StagedPipeline` (decoding and encoding overlap the model):
    ``decode``, then ``infer`` (facts, decision and model; one call for a batch of a fixed
    model), then ``encode`` (finish, then ``deliver`` the cutout, e.g. write it). ``release``
    gives back the memory of a photo that ends before ``encode`` (its model failed)."""

    def __init__(self, pipeline: PhotoPipeline, recipe: Recipe,
                 deliver: Callable[[Photo, Cutout], Any] | None = None) -> None:
        self.pipeline = pipeline
        self.recipe = recipe
        self.deliver = deliver  # None: the outcome is the cutout itself

    def decode(self, photo: Photo) -> tuple[Photo, Decoded]:
        return photo, self.pipeline.decode(photo, self.recipe.options)

    def infer(self, batch: list[tuple[Photo, Decoded]]) -> list[Matte]:
        if self.recipe.rules is None:
            return self.pipeline.matte_batch([d for _, d in batch], self.recipe.model)
        return [self.pipeline.matte(d, photo.name, self.recipe) for photo, d in batch]

    def encode(self, photo: Photo, decoded: tuple[Photo, Decoded], matte: Matte) -> Any:
        cutout = self.pipeline.finish(decoded[1], matte, self.recipe)
        return cutout if self.deliver is None else self.deliver(photo, cutout)

    def release(self, decoded: tuple[Photo, Decoded]) -> None:
        decoded[1].release()
