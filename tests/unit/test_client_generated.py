"""The blocking client is generated from the asyncio one and has not drifted from it."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

from client import AsyncMirrorClient, MirrorClient

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "unasync_client.py"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("unasync_client", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_sync_client_is_what_the_generator_writes() -> None:
    gen = _generator()
    assert (ROOT / "client" / "sync_client.py").read_text() == gen.generate(
        (ROOT / "client" / "client.py").read_text()
    ), "client/sync_client.py drifted: run make sync-client"
    check = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr


def test_the_transform_turns_coroutines_into_calls() -> None:
    source = '''"""async doc."""

async def get(self) -> AsyncIterator[int]:
    async with AsyncResponseStream(open_aio_channel(x)) as s:
        return (await self._call(s)).value
'''
    out = _generator().generate(source)
    assert "def get(self) -> Iterator[int]:" in out
    assert "with ResponseStream(open_channel(x)) as s:" in out
    assert "return (self._call(s)).value" in out
    assert "async" not in out.split('"""', 2)[2] and "await" not in out


def test_every_rpc_method_exists_in_both_flavours_with_one_signature() -> None:
    def methods(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(fn)
            for name, fn in vars(cls).items()
            if callable(fn) and not name.startswith("_")
        }

    async_methods, sync_methods = methods(AsyncMirrorClient), methods(MirrorClient)
    assert set(async_methods) == set(sync_methods)
    assert len(async_methods) >= 30
    for name, signature in async_methods.items():
        assert list(signature.parameters) == list(sync_methods[name].parameters), name
        coroutine = inspect.iscoroutinefunction(getattr(AsyncMirrorClient, name))
        assert not inspect.iscoroutinefunction(getattr(MirrorClient, name)), name
        if name.startswith(("get_", "list_", "create_", "update_", "delete_")):
            assert coroutine, name
