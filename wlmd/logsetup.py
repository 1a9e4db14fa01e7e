"""The handler classes that logging.conf files name, under the name they always had.

wlmd's logging lives in :mod:`wlmd.process.logsetup`; this module only keeps
``wlmd.logsetup.ServiceHandler``, ``StderrHandler`` and ``SyslogHandler``
importable, because ``/etc/wlmd/logging.conf`` (a conffile an administrator
may have edited) and wlmd(8) name the classes by that path.
"""

from wlmd.process.journal import StderrHandler
from wlmd.process.loghandlers import ServiceHandler, SyslogHandler

__all__ = ["ServiceHandler", "StderrHandler", "SyslogHandler"]
