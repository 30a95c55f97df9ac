"""watchdog glue. Handlers run on watchdog's threads, so they only hand paths to the intake."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler, FileSystemMovedEvent
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from mattectl.config import WatchConfig

logger = logging.getLogger(__name__)

Notify = Callable[[str, Path, bool], None]


class EnqueueHandler(FileSystemEventHandler):
    """Passes every path that may have changed to ``notify(folder_name, path, finished)``;
    ``finished`` when the writer said it is done with the file: it closed it after writing, or
    renamed it into place."""

    def __init__(self, folder: str, notify: Notify) -> None:
        self.folder = folder
        self.notify = notify

    def on_created(self, event: FileSystemEvent) -> None:
        # A directory moved or copied in: the intake scans it (files inside raise no events).
        self.notify(self.folder, Path(str(event.src_path)), False)

    def on_modified(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.notify(self.folder, Path(str(event.src_path)), False)

    def on_closed(self, event: FileSystemEvent) -> None:
        # inotify's IN_CLOSE_WRITE: a writer closed the file (closing one only read is not this)
        self.notify(self.folder, Path(str(event.src_path)), True)

    def on_moved(self, event: FileSystemMovedEvent) -> None:
        # "Save as temp, then rename", rsync and SMB clients: the destination is the photo.
        self.notify(self.folder, Path(str(event.dest_path)), True)


def start_observers(watches: list[WatchConfig], notify: Notify) -> list[BaseObserver]:
    """One inotify observer for local folders, one polling observer per polled folder."""
    observers: list[BaseObserver] = []
    native: BaseObserver | None = None
    for watch in watches:
        if watch.polling:
            observer: BaseObserver = PollingObserver(timeout=watch.poll_interval_s)
            observers.append(observer)
        else:
            if native is None:
                native = Observer()
                observers.append(native)
            observer = native
        observer.schedule(EnqueueHandler(watch.name, notify), str(watch.input),
                          recursive=watch.recursive)
        logger.info("watching %s (%s) with %s", watch.input, watch.name,
                    "polling" if watch.polling else "inotify")
    for observer in observers:
        observer.daemon = True
        observer.start()
    return observers


def stop_observers(observers: list[BaseObserver], timeout: float = 5.0) -> None:
    for observer in observers:
        observer.stop()
    for observer in observers:
        observer.join(timeout)
