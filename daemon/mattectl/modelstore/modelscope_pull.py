"""Fetching a model from the ModelScope hub with ModelScope's own ``snapshot_download``.

ModelScope keeps the files in its cache layout, checks each against the sha256 the hub lists,
resumes a broken download and renames a file into place only when complete. Offline, it is asked
for the cache alone (``local_files_only``): without that flag a cached model still costs about
22 s of failed network retries. modelscope is imported here only, when a pull asks for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from mattectl.errors import DownloadError
from mattectl.modelstore.download import Progress

logger = logging.getLogger(__name__)


def _callback_class(progress: Progress) -> type:
    from modelscope.hub.callback import ProgressCallback

    class Callback(ProgressCallback):  # ModelScope makes one per file
        def __init__(self, filename: str, file_size: int) -> None:
            super().__init__(filename, file_size)
            self.done = 0
            progress(0, file_size or None)

        def update(self, size: int) -> None:
            self.done += size
            progress(self.done, self.file_size or None)

    return Callback


def fetch(model_id: str, cache: Path, endpoint: str | None, progress: Progress) -> Path:
    """Download (or bring up to date) ``model_id`` into the ModelScope cache ``cache``."""
    import tqdm
    from modelscope.hub.snapshot_download import snapshot_download

    # ModelScope draws tqdm bars; tqdm's monitor thread would outlive the pull for nothing.
    tqdm.tqdm.monitor_interval = 0

    try:
        folder = snapshot_download(model_id, cache_dir=str(cache), endpoint=endpoint,
                                   progress_callbacks=[_callback_class(progress)])
    except Exception as exc:  # ModelScope raises its own hierarchy, requests' and OSError
        raise DownloadError(f"ModelScope could not download {model_id} "
                            f"({endpoint or 'its default hub'}): {exc}") from exc
    return Path(folder)


def cached(model_ids: Iterable[str], caches: Iterable[Path]) -> Path:
    """A model already in one of the ModelScope ``caches``, asked of ModelScope without any
    network access; raises DownloadError naming where it looked."""
    from modelscope.hub.snapshot_download import snapshot_download

    looked = []
    for cache in caches:
        for model_id in model_ids:
            try:
                return Path(snapshot_download(model_id, cache_dir=str(cache),
                                              local_files_only=True))
            except Exception as exc:  # CacheNotFound and friends
                looked.append(f"{model_id} in {cache}: {str(exc)[:160]}")
    raise DownloadError("not in any ModelScope cache (offline, nothing was downloaded): "
                        + "; ".join(looked))
