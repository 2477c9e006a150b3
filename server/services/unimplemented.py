"""Services of the contract whose issues have not landed yet answer UNIMPLEMENTED cleanly."""

from __future__ import annotations

from typing import Any

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc

# Service name -> the generated registration function; removed here as each one lands.
PENDING = {
    "ContentService": pb_grpc.add_ContentServiceServicer_to_server,
    "DistributionService": pb_grpc.add_DistributionServiceServicer_to_server,
}


def _servicer(service: str) -> Any:
    descriptor = pb.DESCRIPTOR.services_by_name[service]
    base = getattr(pb_grpc, f"{service}Servicer")

    def make(method: str, streaming: bool) -> Any:
        message = f"{service}.{method} is not implemented yet"
        if streaming:

            async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)
                yield  # pragma: no cover - makes this an async generator

            return stream

        async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

        return unary

    methods = {m.name: make(m.name, m.server_streaming) for m in descriptor.methods}
    return type(f"Unimplemented{service}", (base,), methods)()


def register_unimplemented(server: grpc.aio.Server) -> None:
    for service, add in PENDING.items():
        add(_servicer(service), server)
