"""gRPC servicers: validation, proto <-> domain mapping, status codes. No business rules."""
