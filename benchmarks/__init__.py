"""Sync benchmarks of the mirror service against a raw floor and `skopeo sync`.

``python -m benchmarks [--quick] [--runs N] [--workloads ...] [--databases ...]`` starts a real
``docker-registry``, pushes three deterministic workloads into it once (many-tags, big-blobs,
multi-arch) and, for each, measures a first sync, a no-op re-sync and a re-sync after 5 % of the
tags moved:

* the service as a real ``python -m server`` process driven over gRPC, on SQLite and PostgreSQL;
* a raw floor (``benchmarks.floor``): the least work any mirror must do, 10 requests in flight;
* ``skopeo sync --src docker --dest dir``.

Every tool reaches the registry through one counting reverse proxy (``benchmarks.proxy``, built
on ``tests.support.faultproxy.FaultProxy`` without faults) in its own process, so requests by
kind and bytes are counted the same way for all of them. Results go to
``benchmarks/results/<UTC timestamp>.json`` and ``benchmarks/results/latest.json``.
"""
