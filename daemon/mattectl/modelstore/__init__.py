"""Model management behind `mattectl models`: list, pull, verify and import weights.

Nothing here runs inside the daemon: the daemon only looks files up (``backends.catalog``) and
never downloads. Downloads land atomically and are checked against the publisher's checksum,
or, where none is published, recorded in ``<models dir>/manifest.json`` at first download or
import so that `mattectl models verify` can tell a damaged file later.
"""
