"""Modality Performed Procedure Step (PS3.4 Annex F) below the network: the pure rules.

``rules`` is the state machine and the attribute checks; the state store
(:mod:`wlmd.state.mpps`) keeps the instances; the MPPS service
(:mod:`wlmd.services.mpps`) uses both.
"""
