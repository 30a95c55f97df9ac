"""The studio page: what the daemon is doing, the latest cutouts, failures and Retry, in a
browser. Served by ``mattectl run`` when ``[web] enabled = true`` (see :mod:`.server`); reads and
acts through the same services as the CLI (``build_overview``, ``JobRepository.retry``)."""
