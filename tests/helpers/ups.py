"""Builders shared by the UPS and state store tests: data sets, a settable clock, backends."""

from __future__ import annotations

from pydicom.dataset import Dataset

from wlmd.state.backends import Backend, PostgresBackend, SQLiteBackend


def backend_for(location: str) -> Backend:
    if "dbname=" in location:
        return PostgresBackend(location)
    return SQLiteBackend(location)


class Clock:
    """A settable clock (housekeeping delays, backoff) instead of sleeping."""

    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def scheduled(**overrides: str) -> Dataset:
    """A minimal complete N-CREATE data set (every type 1 and 2 attribute)."""
    ds = Dataset()
    ds.ProcedureStepState = "SCHEDULED"
    ds.ScheduledProcedureStepPriority = "MEDIUM"
    ds.ProcedureStepLabel = "CT head"
    ds.WorklistLabel = "CT"
    ds.ScheduledProcedureStepStartDateTime = "20300514093000"
    ds.InputReadinessState = "READY"
    ds.PatientName = "Doe^John"
    ds.PatientID = "P1"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.AdmissionID = ""
    ds.IssuerOfAdmissionIDSequence = []
    ds.AdmittingDiagnosesDescription = ""
    ds.AdmittingDiagnosesCodeSequence = []
    ds.ReferencedRequestSequence = []
    ds.CommentsOnTheScheduledProcedureStep = ""
    ds.ScheduledStationNameCodeSequence = []
    ds.ScheduledStationClassCodeSequence = []
    ds.ScheduledStationGeographicLocationCodeSequence = []
    ds.ScheduledWorkitemCodeSequence = []
    ds.ScheduledProcessingParametersSequence = []
    ds.InputInformationSequence = []
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    return ds


def performed(ds: Dataset) -> Dataset:
    """An N-SET that meets the final-state requirements of COMPLETED."""
    code = Dataset()
    code.CodeValue = "X1"
    code.CodingSchemeDesignator = "99WLMD"
    code.CodeMeaning = "test"
    item = Dataset()
    item.PerformedStationNameCodeSequence = [code]
    item.PerformedWorkitemCodeSequence = [code]
    item.PerformedProcedureStepStartDateTime = "20300514093000"
    item.PerformedProcedureStepEndDateTime = "20300514094500"
    item.OutputInformationSequence = []
    ds.UnifiedProcedureStepPerformedProcedureSequence = [item]
    return ds
