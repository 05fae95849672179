"""`scripts/demo.sh` reuses a binary instead of compiling every time (issue 15, item 5).

Runs the real script with stand-ins: a `gatehouse` that records how it was started, and a `cargo` on PATH
that records whether a build was asked for (and "builds" by writing the stand-in). No real build happens.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from conftest import REPO

STAND_IN = """#!/bin/sh
echo "gatehouse stand-in: $*"
"""


def run_demo(tmp_path: Path, env_extra: dict[str, str]) -> str:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    cargo = fake_bin / "cargo"
    # A build writes the stand-in binary where cargo would put it.
    cargo.write_text(
        "#!/bin/sh\necho \"cargo stand-in: $*\"\n"
        'mkdir -p "$CARGO_TARGET_DIR/release"\n'
        f'cat > "$CARGO_TARGET_DIR/release/gatehouse" <<\'EOF\'\n{STAND_IN}EOF\n'
        'chmod +x "$CARGO_TARGET_DIR/release/gatehouse"\n'
    )
    cargo.chmod(0o755)
    # scripts/test.sh exports GATEHOUSE_BIN (the debug binary) for the other tests: not for these runs.
    inherited = {name: value for name, value in os.environ.items() if name != "GATEHOUSE_BIN"}
    env = {**inherited, "PATH": f"{fake_bin}:{os.environ['PATH']}", "CARGO_TARGET_DIR": str(tmp_path / "target"),
           **env_extra}
    result = subprocess.run(
        [str(REPO / "scripts" / "demo.sh"), "--listen", "127.0.0.1:9"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_demo_builds_once_then_reuses_the_binary_and_honours_gatehouse_bin(tmp_path: Path) -> None:
    first = run_demo(tmp_path, {})
    assert "cargo stand-in: build --release" in first, first
    assert "the first build takes about 6 minutes" in first, first
    assert "gatehouse stand-in: run --listen 127.0.0.1:9 -- streamlit run demo/app.py" in first, first

    second = run_demo(tmp_path, {})
    assert "cargo stand-in" not in second, second
    assert "(up to date)" in second, second

    # A source newer than the binary: built again.
    binary = tmp_path / "target" / "release" / "gatehouse"
    old = time.time() - 10 * 365 * 86400
    os.utime(binary, (old, old))
    third = run_demo(tmp_path, {})
    assert "sources changed since the last build" in third and "cargo stand-in: build --release" in third, third

    given = tmp_path / "given-gatehouse"
    given.write_text(STAND_IN)
    given.chmod(0o755)
    fourth = run_demo(tmp_path, {"GATEHOUSE_BIN": str(given)})
    assert f"using {given} (GATEHOUSE_BIN)" in fourth and "cargo stand-in" not in fourth, fourth
