"""`make lab` really starts JupyterLab: checked headless through the server's REST API."""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow  # kernels, trainings or subprocesses: not in `make check`

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_notebooks_and_opens_py_pairs(tmp_path):
    port = free_port()
    # README's command as it is: no LAB_OPTS, no token given. The learner's way in is the last
    # line `make lab` prints; as root and without a display, jupyter/lab.py adds what it needs.
    env = {
        k: v for k, v in os.environ.items() if k not in ("LAB_OPTS", "DISPLAY", "WAYLAND_DISPLAY")
    }
    env |= {
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_PORT": str(port),  # a free port (Jupyter's own variable, not an option)
    }
    server = subprocess.Popen(
        ["make", "-s", "lab"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True)
    reader.start()
    try:
        for _ in range(240):  # up to 120 s for the server to come up and say where it is
            if any(line.startswith("Open: ") for line in lines):
                break
            assert server.poll() is None, "`make lab` exited:\n" + "".join(lines)[-3000:]
            time.sleep(0.5)
        printed = "".join(lines)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            assert "make lab: running as root (a container?)" in printed, printed[-3000:]
        assert "make lab: no display here, so no browser opens" in printed
        banner, _, after = printed.rpartition("JupyterLab is running.")
        assert f"ssh -L {port}:localhost:{port}" in after, printed[-3000:]
        url = after.split("Open: ", 1)[1].split()[0]  # the start-up log's last line
        assert url.startswith(f"http://localhost:{port}/lab/tree/notebooks/00_setup_check"), url
        assert url in banner  # the address Jupyter printed, repeated last
        token = url.split("token=", 1)[1]
        assert len(token) >= 32 and token != "..."  # the real token, not a masked one
        base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"token {token}"}
        assert requests.get(f"{base}/api/status", headers=headers, timeout=10).ok
        root = requests.get(f"{base}/api/contents", headers=headers, timeout=10).json()
        assert "notebooks" in {item["name"] for item in root["content"]}
        listing = requests.get(f"{base}/api/contents/notebooks", headers=headers, timeout=10).json()
        assert "00_setup_check.py" in {item["name"] for item in listing["content"]}
        opened = requests.get(
            f"{base}/api/contents/notebooks/00_setup_check.py",
            params={"type": "notebook"},
            headers=headers,
            timeout=10,
        )
        assert opened.ok, opened.text
        notebook = opened.json()
        assert notebook["type"] == "notebook"  # jupytext's contents manager turned .py into cells
        assert notebook["content"]["cells"][0]["cell_type"] == "markdown"
        assert requests.get(f"{base}/lab", headers=headers, timeout=10).ok
        # the course's settings override (jupyter/overrides.json): no news pop-up, no update check
        notification = requests.get(
            f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification",
            headers=headers,
            timeout=10,
        ).json()["schema"]["properties"]
        assert notification["fetchNews"]["default"] == "false"  # JupyterLab's own: "none" = ask
        assert notification["checkForUpdates"]["default"] is False
        home = requests.get(f"{base}/", headers=headers, timeout=10, allow_redirects=False)
        location = home.headers["Location"].split("?")[0]
        assert location.endswith("/lab/tree/notebooks/00_setup_check.ipynb")  # lesson 00 opens
        requests.post(f"{base}/api/shutdown", headers=headers, timeout=10)
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
