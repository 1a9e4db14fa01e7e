"""wlmd: a DICOM Modality Worklist SCP, drop-in compatible with DCMTK's wlmscpfs."""

__version__ = "0.1.0"
