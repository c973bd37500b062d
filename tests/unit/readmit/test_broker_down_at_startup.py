"""A process started against a down broker says so in one line and exits non-zero."""

import os
import subprocess
import sys

import pytest

from readmit_core.settings import PROJECT_ROOT


@pytest.mark.parametrize("command", [["scorer", "--metrics-port", "0"], ["ingest"]])
def test_one_line_error_naming_the_url(command, tmp_path):
    env = {
        **os.environ,
        "READMIT_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "READMIT_MODEL_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "readmit", *command],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == ["error: Kafka: no broker answers at 127.0.0.1:1"]
