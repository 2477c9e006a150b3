"""One log line and the metrics of each RPC: method, peer, status code and duration. Never
the request body.

The peer is read when the call starts, never in the `finally` that logs: when a client
cancels (Ctrl-C on `mirrorctl sync`), grpc tears the core call down while the handler unwinds,
and `context.peer()` then dereferences a freed call and crashes the whole process (SIGSEGV in
cygrpc, seen under load). A cancelled stream is logged as CANCELLED without asking the context.
"""

from __future__ import annotations

import asyncio
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
                start, peer = time.monotonic(), context.peer()
                cancelled = False
                try:
                    return await inner(request, context)
                except asyncio.CancelledError:
                    cancelled = True
                    raise
                finally:
                    _log(method, peer, _code(context, cancelled), start)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                start, peer = time.monotonic(), context.peer()
                cancelled = False
                try:
                    async for response in inner_stream(request, context):
                        yield response
                except (asyncio.CancelledError, GeneratorExit):
                    cancelled = True
                    raise
                finally:
                    _log(method, peer, _code(context, cancelled), start)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


def _code(context: grpc.aio.ServicerContext, cancelled: bool) -> str:
    """The status code's name; a cancelled call's context is not touched (see above)."""
    if cancelled:
        return grpc.StatusCode.CANCELLED.name
    code = context.code() or grpc.StatusCode.OK
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


def _log(method: str, peer: str, code: str, start: float) -> None:
    elapsed = time.monotonic() - start
    metrics.RPC_REQUESTS.labels(method, code).inc()
    metrics.RPC_DURATION.labels(method).observe(elapsed)
    log.info("rpc %s %s %s %.1fms", method, peer, code, elapsed * 1000)
