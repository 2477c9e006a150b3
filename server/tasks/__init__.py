"""Durable task queue: runner, per-resource exclusivity, progress fan-out to watchers."""
