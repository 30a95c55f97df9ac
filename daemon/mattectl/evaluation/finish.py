"""The settings that shape a cutout's alpha after the model, scored side by side: resampling
(U²-Net's ``resample``), the edge work (``edges``) and ``fill_holes``, each a
:class:`FinishMatter` whose alpha is what a folder with those settings writes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mattectl.backends.cache import ModelCache
from mattectl.config import ModelsConfig
from mattectl.errors import InputError
from mattectl.imageio.compose import layers, to_uint8
from mattectl.imageio.options import EdgeMode

RESAMPLES = ("official", "lanczos")
HOLES = {"holes": True, "no-holes": False}
#: ``--finish grid``: every resampling and edge mode, holes filled, and the best without.
GRID = (*(f"{r},{e},holes" for r in RESAMPLES for e in EdgeMode),
        "lanczos,matting,no-holes", "official,off,no-holes")


@dataclass(frozen=True)
class Finish:
    resample: str
    edges: EdgeMode
    holes: bool

    @classmethod
    def parse(cls, spec: str, default: Finish) -> Finish:
        """``'lanczos,matting,holes'``: any of a resampling, an edge mode and ``holes`` or
        ``no-holes``, in any order; what is left out is ``default``'s."""
        resample, edges, holes = default.resample, default.edges, default.holes
        for token in (t.strip() for t in spec.split(",") if t.strip()):
            if token in RESAMPLES:
                resample = token
            elif token in HOLES:
                holes = HOLES[token]
            elif token in EdgeMode.__members__.values():
                edges = EdgeMode(token)
            else:
                raise InputError(
                    f"--finish {spec!r}: {token!r} is none of {', '.join(RESAMPLES)}, "
                    f"{', '.join(EdgeMode)}, {', '.join(HOLES)}")
        return cls(resample, edges, holes)

    @property
    def label(self) -> str:
        holes = "holes filled" if self.holes else "no fill"
        return f"{self.resample} · edges {self.edges} · {holes}"


class _LastAlpha:
    """A backend whose latest alpha is kept: the settings of one resampling share one pass of
    the model per photo (the runner gives every matter the same array)."""

    def __init__(self, backend: object) -> None:
        self.backend = backend
        self._key: int | None = None
        self._alpha: np.ndarray | None = None

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        if self._key != id(rgb) or self._alpha is None:
            self._alpha = None
            self._alpha = self.backend.predict(rgb)  # type: ignore[attr-defined]
            self._key = id(rgb)
        return self._alpha


class FinishMatter:
    """What evaluation asks of a matter: ``predict`` (the alpha of the file a folder with these
    settings writes, 8-bit as in the file) and ``device``."""

    def __init__(self, model: _LastAlpha, finish: Finish, model_side: int | None) -> None:
        self.model = model
        self.finish = finish
        self.model_side = model_side

    @property
    def device(self) -> str | None:
        return getattr(self.model.backend, "device", None)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        alpha = self.model.predict(rgb)
        cut = layers(rgb, alpha, model_side=self.model_side, colour=False,
                     edges=self.finish.edges, holes=self.finish.holes)
        return to_uint8(cut.alpha).astype(np.float32) / np.float32(255)


def finish_matters(models: ModelsConfig, models_dir: object, backend: str,
                   specs: list[str]) -> tuple[dict[str, FinishMatter], list[ModelCache]]:
    """One :class:`FinishMatter` per spec (``grid``: :data:`GRID`) of ``backend``, named
    ``backend · label``; and the model caches they use (one per resampling), to be closed."""
    default = Finish(models.u2net.resample, EdgeMode.MATTING, True)
    wanted = [s for spec in specs for s in (GRID if spec == "grid" else (spec,))]
    finishes = list(dict.fromkeys(Finish.parse(spec, default) for spec in wanted))
    caches: dict[str, ModelCache] = {}
    shared: dict[str, _LastAlpha] = {}
    out: dict[str, FinishMatter] = {}
    for finish in finishes:
        if finish.resample not in caches:
            config = models.model_copy(update={"u2net": models.u2net.model_copy(
                update={"resample": finish.resample})})
            caches[finish.resample] = ModelCache(config, models_dir)  # type: ignore[arg-type]
            shared[finish.resample] = _LastAlpha(caches[finish.resample].get(backend))
        model = shared[finish.resample]
        side = model.backend.spec.input_size  # type: ignore[attr-defined]
        out[f"{backend} · {finish.label}"] = FinishMatter(model, finish, side)
    return out, list(caches.values())
