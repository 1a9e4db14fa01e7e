"""The process layer: the supervisor and everything a long-running daemon needs.

Listening (or systemd's sockets), access control and limits, forking and
reaping workers, spare workers, signals, systemd/daemon glue, logging. It
knows the DICOM services only through the hooks of
:class:`~wlmd.process.hooks.ServiceData` (what to preload before forking,
which descriptors to keep and watch, what to refresh), and serves each
association through :mod:`wlmd.association`.
"""
