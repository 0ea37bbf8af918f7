"""`make lab`: start JupyterLab on lesson 00, wherever a learner runs it.

- As root (Docker images, many cloud notebooks and CI boxes), JupyterLab refuses to start
  without `--allow-root`: added, with one line saying so.
- With no display (Linux without $DISPLAY or $WAYLAND_DISPLAY: SSH, a remote box, a container),
  no browser can open: `--no-browser` is added, and once the server is up the last lines printed
  are how to reach it over SSH and the URL with its token.
- `LAB_OPTS` comes last on JupyterLab's command line, so what it says wins
  (`make lab LAB_OPTS="--port=9999 --ip=0.0.0.0"`).

Example:
    $ .venv/bin/python jupyter/lab.py --port=8890   # what `make lab LAB_OPTS=--port=8890` runs
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

LESSON = "notebooks/00_setup_check.ipynb"
URL = re.compile(r"(https?://(?:localhost|127\.0\.0\.1)[^\s]*/lab[^\s]*token=[^\s]+)")


def automatic_options(options: list[str], environ: dict, platform: str, uid: int | None):
    """(options to add, lines to say) for this machine; nothing that `options` already says.

    Example:
        >>> automatic_options([], {}, "linux", 0)[0]
        ['--allow-root', '--no-browser']
    """
    added, said = [], []
    if uid == 0 and not any(
        o.startswith(("--allow-root", "--ServerApp.allow_root")) for o in options
    ):
        added.append("--allow-root")
        said.append("make lab: running as root (a container?), so JupyterLab gets --allow-root")
    no_display = platform.startswith("linux") and not (
        environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")
    )
    if no_display and not any(
        o.startswith(("--no-browser", "--ServerApp.open_browser")) for o in options
    ):
        added.append("--no-browser")
        said.append("make lab: no display here, so no browser opens; the address follows below")
    return added, said


def main(options: list[str]) -> int:
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    added, said = automatic_options(options, dict(os.environ), sys.platform, uid)
    for line in said:
        print(line, flush=True)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.root_dir=.",
        f"--LabApp.default_url=/lab/tree/{LESSON}",
        *added,
        *options,
    ]
    headless = "--no-browser" in added
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, bufsize=1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is JupyterLab's to answer
    _relay(server, headless)
    return server.wait()


def _relay(server: subprocess.Popen, headless: bool) -> None:
    """Echo JupyterLab's log; when headless, end its start-up banner with the address: printed
    once the log has been quiet for a second after the first URL with a token."""
    found: list[str] = []
    announced = threading.Event()
    timer: threading.Timer | None = None

    def announce() -> None:
        port = re.search(r":(\d+)/", found[0])
        port = port.group(1) if port else "8888"
        print(
            f"\nJupyterLab is running. From another computer: ssh -L {port}:localhost:{port} "
            f"you@this-machine, then open the address below there.\nOpen: {found[0]}",
            file=sys.stderr,
            flush=True,
        )
        announced.set()

    for line in server.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        if not headless or announced.is_set():
            continue
        if not found and URL.search(line):
            found.append(URL.search(line).group(1))
        if found:
            if timer is not None:
                timer.cancel()  # the banner goes on: wait until it is quiet
            timer = threading.Timer(1.0, announce)
            timer.start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
