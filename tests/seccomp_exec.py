"""Run a command under a system call filter, as systemd's ``SystemCallFilter=`` with
``SystemCallErrorNumber=EPERM`` applies it: the calls named in a file (one per line) are
allowed, every other call fails with EPERM. Used by tests/test_systemd_unit.py as the prefix of
a real daemon; the filter is inherited by the model's process.

    python tests/seccomp_exec.py ALLOWED_FILE COMMAND [ARG...]
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys

ALLOW = 0x7FFF0000  # SCMP_ACT_ALLOW
ERRNO = 0x00050000  # SCMP_ACT_ERRNO(0)


def libseccomp() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("seccomp")
    return ctypes.CDLL(name) if name else None


def main(allowed_file: str, command: list[str]) -> None:
    lib = libseccomp()
    assert lib is not None, "libseccomp is missing"
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                     ctypes.c_uint]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(ERRNO | errno.EPERM)
    with open(allowed_file) as fh:
        for name in fh.read().split():
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number >= 0:  # (names of other architectures resolve to nothing here)
                assert lib.seccomp_rule_add(ctx, ALLOW, number, 0) == 0, name
    assert lib.seccomp_load(ctx) == 0, "the filter was not loaded"
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
