"""The committed stubs match the proto, and the proto passes buf lint (STANDARD + COMMENTS)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STUBS = ("mirror_pb2.py", "mirror_pb2.pyi", "mirror_pb2_grpc.py")


def test_generated_stubs_match_proto(tmp_path: Path) -> None:
    (tmp_path / "protos").mkdir()
    shutil.copy(ROOT / "protos" / "mirror.proto", tmp_path / "protos" / "mirror.proto")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iprotos=protos",
            "--python_out=.",
            "--pyi_out=.",
            "--grpc_python_out=.",
            "protos/mirror.proto",
        ],
        cwd=tmp_path,
        check=True,
    )
    for name in STUBS:
        generated = (tmp_path / "protos" / name).read_text()
        committed = (ROOT / "protos" / name).read_text()
        assert generated == committed, f"protos/{name} is stale: run `make proto` and commit"


def test_buf_lint_passes() -> None:
    buf = ROOT / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        pytest.skip("buf not installed (scripts/test.sh runs `npm ci` to get it)")
    result = subprocess.run([str(buf), "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [str(buf), "format", "-d", "--exit-code"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
