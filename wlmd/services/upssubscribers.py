"""Where UPS event subscribers listen (``--ups-subscribers FILE``).

An N-ACTION Subscribe names only the Receiving AE title (PS3.4 CC.2.3.2);
the SCP must know how to reach it, and DICOM leaves that to configuration
(dcm4chee keeps it in its LDAP device tree). The file is the administrator's::

    # AE title     host            port   options
    DCMUPSSCU      10.1.2.3        11115
    RIS_EVENTS     ris.example.org 2762   tls

A Subscribe for a title that is not listed is answered 0xC308 (Receiving AE
unknown), as the standard asks, so a typo shows at once instead of as events
that never arrive. Titles are compared exactly, without trailing spaces. Any
bad line stops start-up with ``FILE:LINE: reason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

OPTIONS = frozenset({"tls"})


class SubscriberTableError(Exception):
    """A bad ``--ups-subscribers`` file; ``str()`` is ``FILE:LINE: reason``."""


@dataclass(frozen=True)
class Subscriber:
    """How to reach one subscriber's event listener."""

    ae_title: str
    host: str
    port: int
    tls: bool = False


@dataclass(frozen=True)
class SubscriberTable:
    path: str
    by_title: Mapping[str, Subscriber]

    def known(self, ae_title: str) -> bool:
        return ae_title.strip(" ") in self.by_title

    def address(self, ae_title: str) -> Subscriber | None:
        return self.by_title.get(ae_title.strip(" "))


EMPTY = SubscriberTable("", {})


def parse(text: str, path: str) -> SubscriberTable:
    found: dict[str, Subscriber] = {}
    first: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{path}:{number}"
        if len(words) < 3:
            raise SubscriberTableError(f"{where}: expected 'AE-title host port [tls]'")
        title, host, port_text, *options = words
        if len(title) > 16 or "\\" in title or not title.isprintable():
            raise SubscriberTableError(f"{where}: {title!r} is not an AE title (1-16 characters)")
        if title in found:
            raise SubscriberTableError(
                f"{where}: {title} listed twice (also on line {first[title]})"
            )
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise SubscriberTableError(f"{where}: {port_text!r} is not a port (1-65535)")
        unknown = [o for o in options if o.lower() not in OPTIONS]
        if unknown:
            raise SubscriberTableError(
                f"{where}: unknown option {unknown[0]!r} (known: {', '.join(sorted(OPTIONS))})"
            )
        found[title] = Subscriber(
            title, host, int(port_text), "tls" in (o.lower() for o in options)
        )
        first[title] = number
    return SubscriberTable(path, found)


def read(path: str) -> SubscriberTable:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SubscriberTableError(f"{path}: {reason}") from None
    return parse(text, path)
