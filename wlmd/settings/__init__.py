"""The settings layer: every option declared once, read from the command line or wlmd.conf.

:mod:`~wlmd.settings.options` is the table (it generates ``--help``,
wlmd.conf(5) and the template), :mod:`~wlmd.settings.commandline` reads
``argv`` the way DCMTK's tools do, :mod:`~wlmd.settings.conffile` reads
wlmd.conf, and :mod:`~wlmd.settings.config` is the frozen result that every
other layer reads. Nothing here opens a socket or a storage area.
"""
