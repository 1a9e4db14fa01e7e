"""HL7 v2 order intake, pure parts (no sockets): MLLP framing, parsing, mapping, ACKs.

The listener that feeds them is :mod:`wlmd.services.hl7intake`; every
worklist write goes through :mod:`wlmd.authoring`.
"""
