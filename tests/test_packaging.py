"""`pip install .` makes a `neural-playground` command that works outside the repository, with the
examples, lessons and project templates shipped inside the package. The wheel is built offline
(setuptools without build isolation) and installed into a fresh venv that borrows this venv's
torch and friends through a .pth file, so nothing is downloaded."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def _can_build() -> str:
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed in this venv (pip install setuptools)"
    r = subprocess.run([*PIP, "--version"], capture_output=True, text=True)
    major, minor = (int(v) for v in r.stdout.split()[1].split(".")[:2]) if r.returncode == 0 else (0, 0)
    return "" if (major, minor) >= (22, 3) else "pip older than 22.3 cannot install into another venv (--python)"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    why = _can_build()
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy: building in place would leave build/ and *.egg-info in the repository
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "screenshots")
    for name in ("app", "engine", "widgets", "assets"):
        shutil.copytree(os.path.join(ROOT, name), src / name, ignore=ignore)
    for name in ("main.py", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    r = subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(tmp / "dist"),
                        str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    wheel = next((tmp / "dist").glob("neural_playground-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # torch, Qt, numpy... come from this venv (read after the new venv's own packages): no download
    with open(os.path.join(purelib, "borrowed.pth"), "w") as fh:
        fh.write(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([*PIP, "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return venv, tmp


def _run(venv, tmp, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([str(venv / "bin" / "neural-playground"), *args], capture_output=True, text=True,
                          timeout=300, cwd=str(tmp), env=env)  # not the repository: only the installed copy


def test_the_installed_command_trains_a_shipped_example(installed):
    venv, tmp = installed
    r = _run(venv, tmp, "train", "xor", "--epochs", "3", "-q")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["epochs"] == 3 and summary["val_accuracy"] > 0.9
    assert summary["design_path"].startswith(str(venv)), "the example comes from the installed package"


def test_the_installed_package_ships_lessons_and_project_templates(installed):
    venv, tmp = installed
    r = _run(venv, tmp, "lesson", "--list")
    assert r.returncode == 0 and "xor_hidden_layer" in r.stdout, r.stderr
    r = _run(venv, tmp, "export-project", "iris", str(tmp / "iris_project"))
    assert r.returncode == 0, r.stderr
    assert {"train.py", "model.py", "data.py"} <= set(os.listdir(tmp / "iris_project"))
    assert "scikit-learn" in (tmp / "iris_project" / "requirements.txt").read_text()
