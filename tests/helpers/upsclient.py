"""The benchmark's UPS requestor (bench/upsclient.py), for tests: one copy, loaded by path."""

from __future__ import annotations

from tests.helpers.rawclient import bench_module

_client = bench_module("upsclient")

DcmupsLike = _client.DcmupsLike
Refused = _client.Refused
TRIAL_PUSH: str = _client.TRIAL_PUSH
TRIAL_PULL: str = _client.TRIAL_PULL
TRIAL_WATCH: str = _client.TRIAL_WATCH
TRIAL_EVENT: str = _client.TRIAL_EVENT
