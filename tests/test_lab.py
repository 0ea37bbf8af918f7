"""`make lab` really starts JupyterLab: checked headless through the server's REST API."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tlcourse-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_notebooks_and_opens_py_pairs(tmp_path):
    port = free_port()
    options = (
        f"--no-browser --allow-root --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
        f"--IdentityProvider.token={TOKEN} --ServerApp.runtime_dir={tmp_path}"
    )
    env = os.environ | {"JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "LAB_OPTS": options}
    server = subprocess.Popen(
        ["make", "-s", "lab"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"token {TOKEN}"}
    try:
        for _ in range(120):  # up to 60 s for the server to come up
            try:
                if requests.get(f"{base}/api/status", headers=headers, timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, f"`make lab` exited: {server.stdout.read()}"
            time.sleep(0.5)
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
