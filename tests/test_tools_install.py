"""The repository's install tooling: tools/install.py (`make setup`: uv under pip's settings)
and tools/floors.py (`make test-floors`: every direct dependency at its floor)."""

import subprocess
import sys

import floors
import install
import pytest

# What `pip config list` printed on a machine whose pip takes PyTorch from local indexes and caps
# its version (pip.conf plus PIP_* variables; the same find-links twice).
MACHINE = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.default-timeout='180'
:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/opt/wheels'
download.find-links='/not/for/install'
"""


def test_uv_gets_pips_indexes_find_links_constraints_and_certificate():
    flags, env = install.uv_options(MACHINE)
    assert flags == [
        "--extra-index-url",
        "file:///opt/pypi/simple",
        "--extra-index-url",
        "file:///opt/pypi-more/simple",
        "--find-links",
        "/opt/wheels",
        "--constraint",
        "/etc/xdg/pip/constraints.txt",
    ]
    assert env == {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}


def test_one_index_url_and_the_variable_wins():
    flags, env = install.uv_options(
        "global.index-url='https://mirror.example/simple'\n"
        ":env:.index-url='https://other.example/simple'\n"
    )
    assert flags == ["--index-url", "https://other.example/simple"]
    assert env == {}


def test_no_pip_settings_no_flags():
    assert install.uv_options("") == ([], {})


def test_this_pips_configuration_is_read():
    pytest.importorskip("pip", reason="this venv has no pip (uv made it: the floors run)")
    printed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout
    flags, _ = install.uv_options(printed)
    assert len(flags) % 2 == 0 and all(f.startswith("--") for f in flags[::2])


def test_floors_names_each_package_above_its_floor(capsys):
    declared = floors.declared_floors()
    assert declared["torch"] and declared["torchvision"] and declared["jupyterlab"]
    versions = floors.installed(sys.executable, ["torch"])
    code = floors.main([sys.executable])
    out, err = capsys.readouterr()
    assert "torch" in out and versions["torch"] in out
    if code:  # this environment is not the floors one: the refusal names what is above
        assert "not at their floors" in err and "floor " in err
    else:
        assert "ABOVE" not in out


def test_floors_refuses_a_requirement_without_a_floor(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\ndependencies = ["torch"]\n[project.optional-dependencies]\ndev = []\n'
    )
    with pytest.raises(SystemExit, match="'torch' declares no floor"):
        floors.declared_floors(pyproject)


def test_a_failing_uv_falls_back_to_pip(monkeypatch, capsys):
    calls = []

    def fake_run(command, env=None):
        calls.append(command)
        return 1 if "uv" in command[:4] else 0  # `python -m uv pip install …` fails

    monkeypatch.setattr(install, "run", fake_run)
    monkeypatch.setattr(sys, "argv", ["install.py"])
    assert install.main() == 0
    assert [c[1:4] for c in calls] == [["-m", "pip", "install"], ["-m", "uv", "pip"]] + [
        ["-m", "pip", "install"]
    ]
    assert calls[-1][-2:] == ["-e", ".[dev]"]
    # uv chooses across indexes and writes .pyc files as pip does
    assert {"unsafe-best-match", "--compile-bytecode"} <= set(calls[1])
    assert "uv failed (exit 1); installing with pip instead" in capsys.readouterr().out


def test_installer_pip_never_runs_uv(monkeypatch):
    calls = []
    monkeypatch.setattr(install, "run", lambda command, env=None: calls.append(command) or 0)
    monkeypatch.setattr(sys, "argv", ["install.py", "--installer", "pip"])
    assert install.main() == 0
    assert calls == [
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + ["-e", ".[dev]"]
    ]
