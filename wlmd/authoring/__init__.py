"""Worklist authoring: writing correct entries into storage areas (no network code).

A data source-level package beside :mod:`wlmd.worklist`, for the tools that
create entries (``wlmctl``, a REST layer): the lockfile protocol's writer
side (:mod:`.locking`, :mod:`.files`), the server's own verdict on every
file before it is renamed into place (:mod:`.verdict`), generated IDs,
character set and file names by order identity (:mod:`.compose`), inputs
(:mod:`.sources`) and the area operations (:mod:`.editor`).
"""
