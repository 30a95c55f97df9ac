"""Arrays between the daemon and an inference process: raw bytes, no pickling.

A 1080p photo (6 MB) and its alpha (8 MB) cross the socket for every job. Sending the arrays'
own buffers after a small pickled header costs about half of pickling them (figures in the
README's measuring section), and the receiver reads straight into a writable array of the
announced shape.
"""

from __future__ import annotations

from multiprocessing.connection import Connection

import numpy as np


def send_array(conn: Connection, array: np.ndarray) -> None:
    conn.send_bytes(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)


def receive_array(conn: Connection, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    array = np.empty(shape, dtype)
    size = conn.recv_bytes_into(array.reshape(-1).view(np.uint8).data)
    if size != array.nbytes:
        raise EOFError(f"expected {array.nbytes} bytes, got {size}")
    return array
