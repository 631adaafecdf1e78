"""`python main.py` as a user runs it: the window shows before torch loads, --screenshot, bad args."""
import os
import subprocess
import sys

import pytest
from PySide6.QtGui import QImage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Records, at the main window's first show, whether torch was already imported and how long
# the start took, then runs the real entry point.
HOOK = r"""
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import app.main_window as mw
original = mw.MainWindow.showEvent
def show_event(self, event):
    if not getattr(self, "_hook_seen", False):
        self._hook_seen = True
        print("FIRST_SHOW torch=%s t=%.2f" % ("torch" in sys.modules, time.perf_counter() - t0), flush=True)
    original(self, event)
mw.MainWindow.showEvent = show_event
import main
sys.exit(main.main(sys.argv[1:]))
"""


def _env(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
               NP_SETTINGS_ORG="NeuralPlaygroundTests")
    env.pop("PYTHONPATH", None)
    return env


def _run(args, tmp_path, hook=False, timeout=180):
    cmd = [sys.executable, "-c", HOOK.format(root=ROOT), *args] if hook else [sys.executable, "main.py", *args]
    return subprocess.run(cmd, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=timeout)


def test_window_shows_before_torch_and_screenshot_is_a_real_picture(tmp_path):
    out = tmp_path / "shot.png"
    r = _run(["--screenshot", str(out)], tmp_path, hook=True)
    assert r.returncode == 0, r.stderr
    first = [line for line in r.stdout.splitlines() if line.startswith("FIRST_SHOW")]
    assert first and "torch=False" in first[0], r.stdout
    print(first[0])  # the start-up time, for the curious (-s); timings are not asserted here
    img = QImage(str(out))
    assert not img.isNull() and img.width() >= 1000 and img.height() >= 700
    # a blank or single-colour grab has (almost) no spread of grey levels
    step = 7
    greys = [img.pixelColor(x, y).lightness() for x in range(0, img.width(), step) for y in range(0, img.height(), step)]
    mean = sum(greys) / len(greys)
    var = sum((g - mean) ** 2 for g in greys) / len(greys)
    assert var > 100, f"screenshot looks blank (variance {var:.1f})"
    assert len(set(greys)) > 20


def test_screenshot_of_a_design_file_and_unwritable_target(tmp_path):
    design = os.path.join(ROOT, "assets", "examples", "xor.json")
    r = _run([design, "--screenshot", str(tmp_path / "no" / "such" / "dir" / "x.png")], tmp_path)
    assert r.returncode != 0 and "x.png" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, needle", [
    (["--bogus"], "unrecognized arguments"),
    (["a.json", "b.json"], "unrecognized arguments"),
    (["missing-design.json"], "no design file"),
    (["--screenshot"], "expected one argument"),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, args, needle):
    r = _run(args, tmp_path, timeout=60)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_a_malformed_design_on_the_command_line_is_reported(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "neural-playground-design", "version": 1, "layers": [{"id": "1x"}]}')
    r = _run([str(bad), "--screenshot", str(tmp_path / "x.png")], tmp_path, timeout=60)
    assert r.returncode == 2 and "layers[0]" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.png").exists()
