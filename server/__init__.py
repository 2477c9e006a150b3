"""mirror server: gRPC control plane, sync engine, storage and registry endpoint."""
