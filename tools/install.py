"""`make setup`'s install: the course and its dev tools into the venv running this script, with
uv when it can (a pip package; it installs PyTorch & co. faster than pip), else with pip.

uv does not read pip's configuration, so the index, extra indexes, find-links, constraints and
certificate that pip would use (pip.conf and PIP_* variables, as `pip config list` prints them)
are handed to uv: a machine whose pip takes PyTorch from a local mirror, or caps its version,
gives uv the same. `--index-strategy unsafe-best-match` makes uv choose across all indexes as
pip does, and `--compile-bytecode` writes the .pyc files at install time as pip does (without
them, where PYTHONDONTWRITEBYTECODE is set, every kernel compiles torch & co. from source at each
start). If uv cannot be installed, or its install fails, pip installs instead and says so.

Usage: .venv/bin/python tools/install.py [--installer uv|pip]   (make setup INSTALLER=pip)
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys

TARGET = ["-e", ".[dev]"]
UV_FLAGS = {  # pip's setting -> uv's flag; each value may hold several, space-separated
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}


def uv_options(pip_config_list: str) -> tuple[list[str], dict[str, str]]:
    """uv's flags and environment for what `pip config list` printed.

    Only the sections pip's install reads count (global, install, and PIP_* variables).

    Example:
        >>> flags, env = uv_options(
        ...     "global.find-links='/wheels'\\n"
        ...     "global.extra-index-url='file:///a'\\n"
        ...     ":env:.cert='/etc/ca.crt'\\n"
        ...     "download.dest='x'\\n"
        ... )
        >>> flags
        ['--extra-index-url', 'file:///a', '--find-links', '/wheels']
        >>> env
        {'SSL_CERT_FILE': '/etc/ca.crt'}
    """
    values: dict[str, list[str]] = {}
    for line in pip_config_list.splitlines():
        key, sep, raw = line.partition("=")
        section, _, name = key.rpartition(".")
        if not sep or section not in {"global", "install", ":env:"}:
            continue
        for value in ast.literal_eval(raw).split():
            if value not in values.setdefault(name, []):
                values[name].append(value)
    flags = []
    for name, flag in UV_FLAGS.items():
        chosen = values.get(name, [])
        if name == "index-url":  # one index: the last one listed (PIP_INDEX_URL comes later)
            chosen = chosen[-1:]
        for value in chosen:
            flags += [flag, value]
    env = {"SSL_CERT_FILE": values["cert"][-1]} if values.get("cert") else {}
    return flags, env


def run(command: list[str], env: dict[str, str] | None = None) -> int:
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, env={**os.environ, **(env or {})}).returncode


def pip_install(*args: str) -> int:
    return run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args])


def install_with_uv() -> bool:
    """True when uv installed everything; False (having said why) when pip must."""
    if pip_install("-q", "uv>=0.4") != 0:
        print("setup: could not install uv; installing with pip instead", flush=True)
        return False
    config = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    flags, env = uv_options(config)
    uv = [sys.executable, "-m", "uv", "pip", "install", "--python", sys.executable]
    like_pip = ["--index-strategy", "unsafe-best-match", "--compile-bytecode"]
    code = run([*uv, *like_pip, *flags, *TARGET], env)
    if code != 0:
        print(f"setup: uv failed (exit {code}); installing with pip instead", flush=True)
    return code == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installer", choices=["uv", "pip"], default="uv")
    installer = parser.parse_args().installer
    if installer == "uv" and install_with_uv():
        return 0
    return pip_install(*TARGET)


if __name__ == "__main__":
    sys.exit(main())
