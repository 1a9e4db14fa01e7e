"""Run one query against both servers of a pair and compare everything observable."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from tests.helpers import dcmtk, servers
from tests.helpers.compare import compare_responses
from tests.helpers.dcmtk import ClientResult
from tests.helpers.servers import Server


@dataclass
class ServerPair:
    reference: Server  # wlmscpfs
    candidate: Server  # wlmd (or a second wlmscpfs, see module docstring)


class PairPool:
    """Servers started on first use and kept for the session.

    One wlmscpfs per option set; one wlmd per option set and wlmd variant
    (``extra``: e.g. ``("--no-index",)``), all compared with that wlmscpfs.
    """

    def __init__(self, root: Path, log_dir: Path) -> None:
        self.root = root
        self.log_dir = log_dir
        self.stack = contextlib.ExitStack()
        self.references: dict[tuple[str, ...], Server] = {}
        self.pairs: dict[tuple[tuple[str, ...], tuple[str, ...]], ServerPair] = {}

    def get(self, options: tuple[str, ...], extra: tuple[str, ...] = ()) -> ServerPair:
        if options not in self.references:
            self.references[options] = self.stack.enter_context(
                servers.wlmscpfs(self.root, options, log_dir=self.log_dir)
            )
        if (options, extra) not in self.pairs:
            if os.environ.get("WLMD_DIFF_AGAINST") == "wlmscpfs":
                candidate = self.stack.enter_context(
                    servers.wlmscpfs(self.root, options, log_dir=self.log_dir)
                )
            else:
                candidate = self.stack.enter_context(
                    servers.wlmd(self.root, (*extra, *options), log_dir=self.log_dir)
                )
            self.pairs[(options, extra)] = ServerPair(self.references[options], candidate)
        return self.pairs[(options, extra)]


def run_client(server: Server, kind: str, q: Dataset | None, aec: str, aet: str) -> ClientResult:
    if kind == "echo":
        return dcmtk.echoscu(server.port, aec=aec, aet=aet, wrapper=server.client_wrapper)
    return dcmtk.findscu(server.port, q, aec=aec, aet=aet, wrapper=server.client_wrapper)


def outcome(result: ClientResult) -> dict[str, Any]:
    """Everything but the data sets, in a form two servers must agree on."""
    final = result.final
    return {
        "exit status": result.returncode,
        "association rejection": result.rejection,
        "association failed": result.association_failed,
        "pending statuses": sorted(f"0x{r.status:04X}" for r in result.pending),
        "final status": None if final is None else f"0x{final.status:04X}",
        "offending elements": None
        if final is None
        else [f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in final.offending_elements],
        "error comment": None if final is None else final.error_comment,
    }


def differences(reference: ClientResult, candidate: ClientResult) -> list[str]:
    """Readable list of everything that differs (empty when the answers are equal)."""
    problems = []
    ours, theirs = outcome(reference), outcome(candidate)
    for key in ours:
        if ours[key] != theirs[key]:
            problems.append(f"{key}: wlmscpfs {ours[key]!r} / wlmd {theirs[key]!r}")
    report = compare_responses(reference.datasets, candidate.datasets, "wlmscpfs", "wlmd")
    if report:
        problems.append("response data sets differ:\n" + report)
    return problems


def run_pair(
    pair: ServerPair, kind: str, q: Dataset | None, aec: str, aet: str = "FINDSCU"
) -> tuple[ClientResult, ClientResult]:
    reference = run_client(pair.reference, kind, q, aec, aet)
    candidate = run_client(pair.candidate, kind, q, aec, aet)
    return reference, candidate


def failure_message(
    case_id: str,
    reference: ClientResult,
    candidate: ClientResult,
    problems: list[str],
    pair: ServerPair,
) -> str:
    return (
        f"[{case_id}] wlmscpfs and wlmd differ:\n  - "
        + "\n  - ".join(problems)
        + f"\n\n== wlmscpfs client ==\n{reference.describe()}"
        + f"\n\n== wlmd client ==\n{candidate.describe()}"
        + f"\n\n== wlmd server ==\n{pair.candidate.describe()[-3000:]}"
    )
