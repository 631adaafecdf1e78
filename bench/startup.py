"""Start-up time: from exec of ``python main.py`` to the main window mapped on an X screen.

Runs the app N times (default 5) as a user starts it, each in a fresh process with empty
settings, under Xvfb (started here on a free display unless --display is given), and watches
for the window with xdotool (``search --onlyvisible``: the window is mapped). Prints each time
and the median; ``--importtime`` also writes ``python -X importtime`` of one run to a file.

    python bench/startup.py [--runs 5] [--display :99] [--importtime /tmp/imports.txt]

Target (issue 14): median < 1 s.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TITLE = "Neural Playground"


def start_xvfb() -> tuple[subprocess.Popen, str]:
    for n in range(99, 120):
        if os.path.exists(f"/tmp/.X{n}-lock"):
            continue
        proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        display = f":{n}"
        for _ in range(200):
            if subprocess.run(["xdpyinfo", "-display", display], capture_output=True).returncode == 0 \
                    if shutil.which("xdpyinfo") else os.path.exists(f"/tmp/.X11-unix/X{n}"):
                return proc, display
            time.sleep(0.02)
        proc.kill()
    raise SystemExit("startup.py: could not start Xvfb")


def mapped(display: str, pid: int) -> bool:
    r = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(pid), "--name", TITLE],
                       capture_output=True, text=True, env=dict(os.environ, DISPLAY=display))
    return r.returncode == 0 and bool(r.stdout.strip())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc): what the start-up cost the app itself,
    whatever else the machine was doing."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def one_run(display: str, extra_args: list[str], timeout: float = 30.0, stderr=subprocess.DEVNULL) -> tuple[float, float]:
    home = tempfile.mkdtemp(prefix="np-startup-")
    env = dict(os.environ, DISPLAY=display, HOME=home, XDG_CONFIG_HOME=home, NP_SETTINGS_ORG="np-startup-bench")
    env.pop("QT_QPA_PLATFORM", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *extra_args, os.path.join(ROOT, "main.py")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr,
                            start_new_session=True)  # its own process group: the worker it spawns goes too
    try:
        while time.perf_counter() - t0 < timeout:
            if mapped(display, proc.pid):
                return time.perf_counter() - t0, cpu_seconds(proc.pid)
            if proc.poll() is not None:
                raise SystemExit(f"startup.py: the app exited with {proc.returncode} before showing its window")
            time.sleep(0.005)
        raise SystemExit(f"startup.py: no window after {timeout} s")
    finally:
        # the measurement is over: end the app and everything it started at once, so no torch import of
        # this run competes with the next one
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--display", help="an X display to use instead of starting Xvfb")
    ap.add_argument("--importtime", metavar="FILE", help="also write python -X importtime of one run here")
    args = ap.parse_args()
    xvfb = None
    display = args.display
    if display is None:
        xvfb, display = start_xvfb()
    try:
        one_run(display, [])  # not counted: fills the OS file cache once, as any second start of the app finds it
        times = [one_run(display, []) for _ in range(args.runs)]
        if args.importtime:
            with open(args.importtime, "wb") as fh:  # -X importtime writes to stderr
                one_run(display, ["-X", "importtime"], stderr=fh)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)
    print("runs (wall s / app CPU s): " + "  ".join(f"{w:.3f}/{c:.2f}" for w, c in times))
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores: above ~1 other work competed with the app)")
    print(f"startup_median_s {statistics.median(w for w, _ in times):.3f} cpu_median_s "
          f"{statistics.median(c for _, c in times):.2f} (exec to window mapped, {args.runs} runs, display {display})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
