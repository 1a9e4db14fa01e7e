"""Order control (ORC-1, ORC-5) as a decision table: what orders_of decides, then what
Intake does with it in a real storage area (NW/XO/CA/DC/OC/SC, unknown orders, repeats)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from tests.helpers.hl7messages import omi, orm
from tests.helpers.worklists import make_area
from wlmd.authoring.editor import AreaEditor
from wlmd.hl7.intake import Intake
from wlmd.hl7.mapping import combined
from wlmd.hl7.message import Hl7Error, Message
from wlmd.hl7.orders import orders_of

STATIONS = {"CT": "CT01"}


@pytest.mark.parametrize(
    ("control", "status", "remove"),
    [
        ("NW", "SC", False),
        ("XO", "SC", False),
        ("CA", "", True),
        ("DC", "", True),
        ("OC", "", True),
        ("SC", "CA", True),
        ("SC", "DC", True),
        ("SC", "CM", True),
        ("SC", "IP", False),
        ("SC", "SC", False),
        ("nw", "", False),  # ORC-1 compared upper-case
    ],
)
def test_order_control_decides_put_or_remove(control: str, status: str, remove: bool) -> None:
    (order,) = orders_of(Message(orm(orc={1: control, 5: status})), combined(), STATIONS)
    assert (order.control, order.remove, order.group) == (control.upper(), remove, 1)


@pytest.mark.parametrize(
    ("payload", "code", "where", "words"),
    [
        (orm(orc={1: "RP"}), "AE", "ORC-1", "send NW, XO, CA, DC, OC or SC"),
        (orm(orc={1: ""}), "AE", "ORC-1", "'(empty)'"),
        (orm(control_id=""), "AR", "MSH-10", "control ID is empty"),
        (orm(pid={5: ""}), "AE", "PID-5", "patient name is empty"),
        (orm(obr={24: ""}), "AE", "OBR-24", "modality is empty"),
        (orm(orc={7: ""}), "AE", "ORC-7", "scheduled start"),
        (orm(obr={4: ""}), "AE", "OBR-4", "requested procedure"),
        (orm(obr={18: "A" * 17}), "AE", "OBR-18", "longer than 16"),
        (orm(obr={18: "", 20: ""}), "AE", "OBR-18", "could not be found again"),
        (omi(ipcs=()), "AR", "IPC", "has no IPC"),
    ],
)
@pytest.mark.filterwarnings("ignore:The value length")  # pydicom on the 17-character SH
def test_refusals_name_the_field(payload: bytes, code: str, where: str, words: str) -> None:
    with pytest.raises(Hl7Error) as caught:
        orders_of(Message(payload), combined(), STATIONS)
    assert (caught.value.ack_code, caught.value.where) == (code, where)
    assert words in caught.value.reason


def test_a_cancel_needs_only_the_identity() -> None:
    (order,) = orders_of(
        Message(orm(orc={1: "CA", 7: ""}, obr={4: "", 24: ""})), combined(), STATIONS
    )
    assert order.remove and order.dataset.AccessionNumber == "ACC1"


def test_two_order_groups_are_two_orders() -> None:
    payload = orm(
        extra=(
            ("ORC", {1: "CA", 2: "PL9", 3: "FI9"}),
            ("OBR", {1: "2", 2: "PL9", 4: "X^Y", 18: "ACC9", 24: "CT"}),
        )
    )
    first, second = orders_of(Message(payload), combined(), STATIONS)
    assert (first.control, first.remove, first.group) == ("NW", False, 1)
    assert (second.control, second.remove, second.group) == ("CA", True, 2)
    assert second.dataset.AccessionNumber == "ACC9"


class Area:
    """An Intake on a real storage area; each message gets a fresh control ID."""

    def __init__(self, root: Path) -> None:
        self.path = make_area(root, "WLMD", {})
        self.intake = Intake(AreaEditor(str(root), "WLMD", 5.0), None, STATIONS)
        self.count = 0

    def send(self, control: str, **orc_obr: dict[int, str]) -> tuple[str, str]:
        self.count += 1
        orc = {1: control, **orc_obr.get("orc", {})}
        outcome = self.intake.handle(
            orm(control_id=f"T{self.count}", orc=orc, obr=orc_obr.get("obr"))
        )
        return outcome.code, outcome.reason

    def modalities(self) -> list[str]:
        return sorted(
            str(dcmread(p).ScheduledProcedureStepSequence[0].Modality)
            for p in self.path.glob("*.wl")
        )


# (the messages sent in order as (ORC-1, OBR-24), the outcome of the last, the area after)
SEQUENCES = [
    ([("NW", "CT")], "AA", ["CT"]),
    ([("NW", "CT"), ("NW", "MR")], "AA", ["MR"]),  # a repeated NW replaces, no duplicate
    ([("XO", "MR")], "AA", ["MR"]),  # XO of an unknown order creates it (the RIS's view)
    ([("NW", "CT"), ("XO", "MR")], "AA", ["MR"]),
    ([("NW", "CT"), ("CA", "CT")], "AA", []),
    ([("CA", "CT")], "AA", []),  # CA of an unknown order: AA, "already removed"
    ([("NW", "CT"), ("CA", "CT"), ("CA", "CT")], "AA", []),
    ([("NW", "CT"), ("DC", "CT")], "AA", []),
    ([("NW", "CT"), ("OC", "CT")], "AA", []),
    ([("NW", "CT"), ("SC^CM", "CT")], "AA", []),
    ([("NW", "CT"), ("SC^IP", "MR")], "AA", ["MR"]),
    ([("NW", "CT"), ("RP", "MR")], "AE", ["CT"]),  # refused: nothing changed
]


@pytest.mark.parametrize(("sent", "code", "after"), SEQUENCES)
def test_sequences_in_a_real_area(
    tmp_path: Path, sent: list[tuple[str, str]], code: str, after: list[str]
) -> None:
    area = Area(tmp_path)
    outcomes = []
    for control, modality in sent:
        control, _, status = control.partition("^")
        outcomes.append(area.send(control, orc={5: status}, obr={24: modality}))
    assert outcomes[-1][0] == code, outcomes
    assert all(c == "AA" for c, _ in outcomes[:-1]), outcomes
    assert area.modalities() == after
    if sent[-1][0] == "CA" and [c for c, _ in sent].count("NW") < [c for c, _ in sent].count("CA"):
        assert "no such order (already removed)" in outcomes[-1][1]
