"""MPPS data sets as a modality sends them (IHE RAD-6 N-CREATE, RAD-7 N-SET)."""

from __future__ import annotations

from pydicom.dataset import Dataset


def in_progress(study_uid: str = "1.2.826.0.1.3680043.8.498.10", sps_id: str = "SPS1") -> Dataset:
    """An N-CREATE data set: IN PROGRESS, the Type 1 attributes, the scheduled step."""
    step = Dataset()
    step.StudyInstanceUID = study_uid
    step.ReferencedStudySequence = []
    step.AccessionNumber = "ACC1"
    step.RequestedProcedureID = "RP1"
    step.RequestedProcedureDescription = "CT head"
    step.ScheduledProcedureStepID = sps_id
    step.ScheduledProcedureStepDescription = "CT head plain"
    step.ScheduledProtocolCodeSequence = []
    ds = Dataset()
    ds.ScheduledStepAttributesSequence = [step]
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MPPS1"
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "F"
    ds.ReferencedPatientSequence = []
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "CT01"
    ds.PerformedStationName = "CT room 1"
    ds.PerformedLocation = ""
    ds.PerformedProcedureStepStartDate = "20261202"
    ds.PerformedProcedureStepStartTime = "093000"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = ""
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = []
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = "CT"
    ds.StudyID = "1"
    ds.PerformedProtocolCodeSequence = []
    ds.PerformedSeriesSequence = []
    return ds


def completed(status: str = "COMPLETED", end: bool = True) -> Dataset:
    """An N-SET data set ending the step, with one performed series."""
    series = Dataset()
    series.PerformingPhysicianName = ""
    series.ProtocolName = "Head"
    series.OperatorsName = ""
    series.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.11"
    series.SeriesDescription = ""
    series.RetrieveAETitle = ""
    series.ReferencedImageSequence = []
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    if end:
        ds.PerformedProcedureStepEndDate = "20261202"
        ds.PerformedProcedureStepEndTime = "094500"
    ds.PerformedSeriesSequence = [series]
    return ds
