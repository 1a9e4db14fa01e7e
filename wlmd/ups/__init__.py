"""Unified Procedure Step (PS3.4 Annex CC) below the network: pure rules.

``states`` (the state machine, Table CC.1.1-2, and the statuses),
``attributes`` (the requirement table CC.2.5-3 and its checks), ``query``
(C-FIND matching and responses, reusing the MWL matcher) and
``subscriptions`` (CC.2.3 subscriptions and the CC.2.4 events a change
produces). No I/O and no network code here: the state store
(``wlmd/state``) keeps the instances, the UPS service uses both.
"""
