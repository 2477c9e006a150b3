"""Sync and serving benchmarks of the mirror service (see benchmarks/README.md).

``python -m benchmarks [--quick] [--sections sync,serving] [--workloads ...] [--databases ...]``
starts a real ``docker-registry`` and pushes deterministic workloads into it once (many-tags,
big-blobs, multi-arch, many-tags-10k). The *sync* section measures, per workload, a first
sync, a no-op re-sync and a re-sync after 5 % of the tags moved:

* the service as a real ``python -m server`` process driven over gRPC, on SQLite and PostgreSQL;
* a raw floor (``benchmarks.floor``): the least work any mirror must do, 10 requests in flight;
* ``skopeo sync --src docker --dest dir``.

Every tool talks to the registry directly; requests by kind and bytes are counted afterwards
from the registry's access log (``benchmarks.accesslog``), outside every timed path. The
*serving* section (``benchmarks.serving``) loads the service's registry endpoint and the same
``docker-registry`` serving the same repositories with ``wrk``/``ab``. Results go to
``benchmarks/results/<UTC timestamp>.json`` and ``benchmarks/results/latest.json``.
"""
