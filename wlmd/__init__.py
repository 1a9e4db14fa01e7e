"""wlmd: a DICOM Modality Worklist SCP, drop-in compatible with DCMTK's wlmscpfs."""

import os as _os

# numpy (imported by pydicom) would otherwise start OpenBLAS threads in the
# supervisor, which must stay single-threaded to fork safely.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

#: Implementation Class UID and Version Name (PS3.7 D.3.3.2, PS3.10 7.1): wlmd's in
#: associations and in the file meta of the worklist files wlmctl writes.
IMPLEMENTATION_CLASS_UID = "2.25.272335116079396712994913927510549020011"
IMPLEMENTATION_VERSION_NAME = f"WLMD_{__version__}"[:16]
