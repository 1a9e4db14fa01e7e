"""wlmd: a DICOM Modality Worklist SCP, drop-in compatible with DCMTK's wlmscpfs."""

import os as _os

# numpy (imported by pydicom) would otherwise start OpenBLAS threads in the
# supervisor, which must stay single-threaded to fork safely.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
