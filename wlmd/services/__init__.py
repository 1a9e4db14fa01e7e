"""The DICOM services wlmd offers, each a :class:`wlmd.association.dimse.Service`.

:mod:`wlmd.services.echo` (Verification, PS3.4 A) and :mod:`wlmd.services.mwl`
(Modality Worklist C-FIND, PS3.4 K) plug into the association layer the same
way: abstract syntaxes to offer, and a handler per DIMSE command. A UPS or
MPPS service is one more module of the same shape.
"""

from __future__ import annotations
