"""One log line and the metrics of each RPC: method, peer, status code and duration. Never
the request body."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from server import metrics

log = logging.getLogger("mirror.rpc")


class AccessLogInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler to log how the call ended."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                start = time.monotonic()
                try:
                    return await inner(request, context)
                finally:
                    _log(method, context, start)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                start = time.monotonic()
                try:
                    async for response in inner_stream(request, context):
                        yield response
                finally:
                    _log(method, context, start)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


def _log(method: str, context: grpc.aio.ServicerContext, start: float) -> None:
    code = context.code() or grpc.StatusCode.OK
    name = code.name if isinstance(code, grpc.StatusCode) else str(code)
    elapsed = time.monotonic() - start
    metrics.RPC_REQUESTS.labels(method, name).inc()
    metrics.RPC_DURATION.labels(method).observe(elapsed)
    log.info("rpc %s %s %s %.1fms", method, context.peer(), name, elapsed * 1000)
