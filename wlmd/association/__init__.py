"""The DICOM association layer: upper layer protocol and DIMSE, with no service logic.

* :mod:`~wlmd.association.wire`: PDU types, bounds, the fixed PDUs, command
  set and P-DATA-TF encoders (everything wlmd encodes by hand, in one place);
* :mod:`~wlmd.association.link`: whole PDUs from one connection, bounded;
* :mod:`~wlmd.association.negotiation`: A-ASSOCIATE-RQ to -AC (pynetdicom's codecs);
* :mod:`~wlmd.association.dimse`: DIMSE messages, and the :class:`Service`
  interface services plug into (abstract syntaxes, a handler per command);
* :mod:`~wlmd.association.runtime`: one association as a single-threaded loop.

It imports nothing of the worklist, the configuration or the process model:
the worker (:mod:`wlmd.process.worker`) wires services, policy and logging to it.
"""
