"""The registry's access log line and request metrics, written when a response is complete.

aiohttp calls the access logger once per request after the body went out, with the time it
took: the cheapest place to count requests by route and status, bytes and latency. Route
labels are the route patterns (`/v2/{name}/blobs/{digest}`), never the raw path, so label
values stay bounded whatever clients request.
"""

from __future__ import annotations

import logging

from aiohttp.web_fileresponse import FileResponse
from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from server import metrics

UNMATCHED = "unmatched"


class RegistryAccessLogger(AccessLogger):
    """aiohttp's access log line (when INFO is on) plus the registry metrics (always)."""

    @property
    def enabled(self) -> bool:
        # aiohttp skips `log` when this is False; the metrics must not depend on log levels.
        return True

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            super().log(request, response, time)
        resource = getattr(request.match_info.route, "resource", None)
        route = resource.canonical if resource is not None else UNMATCHED
        method = metrics.http_method_label(request.method)
        metrics.REGISTRY_REQUESTS.labels(route, method, str(response.status)).inc()
        sent = response.body_length
        if isinstance(response, FileResponse) and request.method == "GET" and response.status < 300:
            # sendfile bypasses the payload writer that counts `body_length`.
            sent = max(sent, response.content_length or 0)
        metrics.REGISTRY_BYTES.labels(route).inc(sent)
        metrics.REGISTRY_DURATION.labels(route).observe(time)
