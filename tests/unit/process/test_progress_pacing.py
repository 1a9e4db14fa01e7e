"""Start-up progress for systemd: when EXTEND_TIMEOUT_USEC and STATUS are sent, and what.

The pacing is a pure function of the clock and the counts, tested here with
a fake clock; the integration test (tests/integration/test_load_progress.py)
checks the datagrams of a real start-up.
"""

from __future__ import annotations

import pytest

from wlmd.process.systemd import LoadProgress, progress_due


@pytest.mark.parametrize(
    ("last", "now", "done", "total", "due"),
    [
        (None, 100.0, 0, 5000, True),  # the first call: loading starts
        (100.0, 101.9, 10, 5000, False),  # within the interval
        (100.0, 102.0, 10, 5000, True),  # the interval is up
        (100.0, 100.1, 5000, 5000, True),  # the last file
        (100.0, 100.1, 5001, 5000, False),  # files appeared: no message per extra file
        (None, 100.0, 0, 0, True),  # nothing to load still says so once
    ],
)
def test_progress_due(last: float | None, now: float, done: int, total: int, due: bool) -> None:
    assert progress_due(last, now, 2.0, done, total) is due


def test_load_progress_paces_messages_by_the_clock() -> None:
    sent: list[str] = []
    now = [1000.0]
    progress = LoadProgress(send=sent.append, clock=lambda: now[0], interval=5.0)
    progress(0, 300)
    for done in range(1, 300):
        now[0] = 1000.0 + done / 20  # 20 files a second: 15 s in all
        progress(done, 300)
    progress(300, 300)
    statuses = [message.splitlines()[1] for message in sent]
    assert statuses == [
        "STATUS=loading worklist: 0 of 300 files",
        "STATUS=loading worklist: 100 of 300 files",
        "STATUS=loading worklist: 200 of 300 files",
        "STATUS=loading worklist: 300 of 300 files",
    ]
    # Every message extends the start timeout by 30 s: many intervals of margin.
    assert all(message.splitlines()[0] == "EXTEND_TIMEOUT_USEC=30000000" for message in sent)
    assert LoadProgress.INTERVAL <= 5.0


def test_load_progress_never_shows_more_done_than_total() -> None:
    sent: list[str] = []
    now = [0.0]
    progress = LoadProgress(send=sent.append, clock=lambda: now[0], interval=1.0)
    progress(0, 2)
    now[0] += 1.0
    progress(3, 2)  # a file appeared while loading
    assert sent[-1].endswith("STATUS=loading worklist: 3 of 3 files")
