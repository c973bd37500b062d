"""The Dockerfile, its entrypoint and health check (no Docker engine needed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import infra_references as refs
import pytest

from readmit.embedded.services import free_port


def stages() -> dict[str, list[str]]:
    """Stage name -> its instruction lines (continuations joined)."""
    text = re.sub(r"\\\n", " ", refs.DOCKERFILE.read_text())
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if match:
            current = match.group(2) or match.group(1)
            out[current] = [line]
        elif current:
            out[current].append(line)
    return out


def build_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG\s+(\w+)=(\S+)", refs.DOCKERFILE.read_text(), re.M))


def test_base_images_are_pinned_slim_python_311() -> None:
    args = build_args()
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", args["PYTHON_IMAGE"])
    for name, value in args.items():
        if name.endswith("_IMAGE"):
            assert refs.image_is_pinned(value), f"{name}={value}"
    for lines in stages().values():
        base = lines[0].split()[1]
        assert base.startswith("${") or base in stages() or refs.image_is_pinned(base), base


def test_default_target_is_the_runtime_image() -> None:
    all_stages = stages()
    last = list(all_stages)[-1]
    assert all_stages[last][0].split()[1] == "runtime"
    runtime = " ".join(all_stages["runtime"])
    assert "USER 10001" in runtime, "runtime runs as a non-root user"
    assert "HEALTHCHECK" in runtime
    assert "ENTRYPOINT" in runtime


def test_runtime_stage_has_no_compilers() -> None:
    runtime = " ".join(stages()["runtime"])
    for tool in ("build-essential", "gcc", "g++", "clang", "make "):
        assert tool not in runtime, f"{tool} in the runtime stage"
    assert "COPY --from=build /opt/venv /opt/venv" in runtime


def test_production_install_leaves_out_the_embedded_extra() -> None:
    build = " ".join(stages()["build"])
    installs = re.findall(r"pip install [^&]*", build)
    assert any(re.search(r"pip install .*--no-deps.* \.(\s|$)", i) for i in installs), installs
    for line in installs:
        assert ".[" not in line, f"extras in a production install: {line}"
        assert "-e " not in line, f"editable production install: {line}"


def test_production_install_takes_only_locked_versions() -> None:
    """Every requirement the image installs comes from the runtime lock, hash-checked."""
    build = " ".join(stages()["build"])
    installs = re.findall(r"pip install [^&]*", build)
    for line in installs:
        assert "--no-deps" in line, f"a resolving install in the image: {line}"
        if " -r " in line:
            assert "--require-hashes" in line, line
    assert any("requirements/runtime.lock" in i for i in installs), installs
    assert "COPY requirements/ requirements/" in build


def test_model_is_mounted_or_baked_read_only() -> None:
    runtime = " ".join(stages()["runtime"])
    assert "READMIT_MODEL_DIR=/models" in runtime
    baked = " ".join(stages()["baked"])
    assert "--chown=root:root" in baked
    assert "USER 10001" in baked


def test_dockerignore_keeps_state_and_secrets_out() -> None:
    ignored = set((refs.ROOT / ".dockerignore").read_text().splitlines())
    for entry in (".env", ".venv", "var", "**/node_modules", ".git"):
        assert entry in ignored, entry


def _entrypoint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(refs.ENTRYPOINT), *args], capture_output=True, text=True, timeout=30
    )


def test_entrypoint_lists_every_role() -> None:
    result = _entrypoint("--help")
    assert result.returncode == 0
    for role in refs.ROLES:
        assert re.search(rf"^\s+{re.escape(role)}\b", result.stdout, re.M), role


def test_entrypoint_refuses_an_unknown_role() -> None:
    result = _entrypoint("no-such-role")
    assert result.returncode == 64
    assert "unknown role: no-such-role" in result.stderr


def test_train_if_missing_keeps_an_existing_champion(tmp_path: Path) -> None:
    (tmp_path / "champion").write_text("lr-20260101\n")
    env = {**os.environ, "READMIT_MODEL_DIR": str(tmp_path), "READMIT_STATE_DIR": str(tmp_path)}
    result = subprocess.run(
        ["sh", str(refs.ENTRYPOINT), "train", "--if-missing"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "champion lr-20260101 present" in result.stdout
    assert (tmp_path / "role").read_text().strip() == "oneshot"


def _health(role: str | None, state: Path, **env: str) -> int:
    if role is not None:
        (state / "role").write_text(f"{role}\n")
    full = {**os.environ, "READMIT_STATE_DIR": str(state), **env}
    return subprocess.run(
        [sys.executable, str(refs.HEALTHCHECK)], capture_output=True, timeout=60, env=full
    ).returncode


def test_health_check_passes_for_one_shot_roles(tmp_path: Path) -> None:
    assert _health("oneshot", tmp_path) == 0


@pytest.mark.parametrize(
    ("role", "setting"),
    [
        ("ingest", "READMIT_INGEST_PORT"),
        ("scorer", "READMIT_SCORER_METRICS_PORT"),
        ("explainer", "READMIT_EXPLAINER_METRICS_PORT"),
        ("web", "READMIT_WEB_PORT"),
    ],
)
def test_health_check_fails_when_nothing_answers(tmp_path: Path, role: str, setting: str) -> None:
    assert _health(role, tmp_path, **{setting: str(free_port())}) == 1


def test_health_check_of_the_alert_feed_follows_the_broker(tmp_path: Path) -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert (
            _health("alerts-consumer", tmp_path, READMIT_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}") == 0
        )
    assert _health("alerts-consumer", tmp_path, READMIT_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}") == 1


def test_health_check_passes_when_the_role_answers(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = str(server.server_address[1])
        assert _health("ingest", tmp_path, READMIT_INGEST_PORT=port) == 0
        assert _health("scorer", tmp_path, READMIT_SCORER_METRICS_PORT=port) == 0
        assert _health("explainer", tmp_path, READMIT_EXPLAINER_METRICS_PORT=port) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert paths == ["/healthz", "/healthz", "/healthz"]
