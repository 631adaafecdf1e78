"""Start-up time: from exec of ``python main.py`` to the main window mapped on an X screen.

Runs the app N times (default 5) as a user starts it, each in a fresh process with empty
settings, under Xvfb (started here on a free display unless --display is given), and watches
for the window with xdotool (``search --onlyvisible``: the window is mapped). Prints each time
and the median; ``--importtime`` also writes ``python -X importtime`` of one run to a file.

The window shows before its views are built (app.main_window, lazy): so that no cost is moved
out of sight, the app also reports (NP_STARTUP_LOG) when its first frame was drawn and when the
whole window - every dock's view and presenter - was built; those times are printed too, and
with ``--trainer`` the time until the trainer process has loaded torch.

    python bench/startup.py [--runs 5] [--display :99] [--importtime /tmp/imports.txt] [--trainer]
                            [--script FILE --only-window]

``--script`` starts another program in place of main.py (e.g. an older checkout's, or a bare
QMainWindow titled "Neural Playground" for the floor of this machine); ``--only-window`` stops at
the window mapped, for programs that write no NP_STARTUP_LOG.

Target (issue 14): median < 1 s to the window mapped.
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
        # -noreset: by default the server resets when its last client leaves, and an app started in
        # that moment cannot connect ("could not connect to display", exit -6)
        proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1920x1080x24", "-nolisten", "tcp", "-noreset"],
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


def read_log(path: str) -> dict[str, tuple[float, float]]:
    """The app's NP_STARTUP_LOG: event -> (perf_counter, its CPU seconds)."""
    try:
        with open(path) as fh:
            rows = [line.split() for line in fh if line.strip()]
    except OSError:
        return {}
    return {r[0]: (float(r[1]), float(r[2])) for r in rows if len(r) == 3}


def one_run(display: str, extra_args: list[str], timeout: float = 30.0, stderr=subprocess.DEVNULL,
            wait_for: tuple[str, ...] = ("built",), script: str = os.path.join(ROOT, "main.py")
            ) -> dict[str, tuple[float, float]]:
    """{"mapped": (wall s, app CPU s), and for each event the app logged, the same} for one start."""
    home = tempfile.mkdtemp(prefix="np-startup-")
    log = os.path.join(home, "startup.log")
    env = dict(os.environ, DISPLAY=display, HOME=home, XDG_CONFIG_HOME=home, NP_SETTINGS_ORG="np-startup-bench",
               NP_STARTUP_LOG=log)
    env.pop("QT_QPA_PLATFORM", None)
    # a user's second start finds the modules compiled (__pycache__, written by the first, uncounted run);
    # with PYTHONDONTWRITEBYTECODE set every start compiled ~70 of ours again (~0.2 s)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()  # CLOCK_MONOTONIC on Linux: the same clock as the app's perf_counter
    proc = subprocess.Popen([sys.executable, *extra_args, script], cwd=os.path.dirname(os.path.abspath(script)), env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr,
                            start_new_session=True)  # its own process group: the worker it spawns goes too
    out: dict[str, tuple[float, float]] = {}
    try:
        while time.perf_counter() - t0 < timeout:
            if "mapped" not in out and mapped(display, proc.pid):
                out["mapped"] = (time.perf_counter() - t0, cpu_seconds(proc.pid))
            if "mapped" in out:
                events = read_log(log)
                if all(e in events for e in wait_for):
                    out.update({e: (t - t0, c) for e, (t, c) in events.items()})
                    return out
            if proc.poll() is not None:
                raise SystemExit(f"startup.py: the app exited with {proc.returncode} before "
                                 f"{'showing its window' if 'mapped' not in out else 'it was built'}")
            time.sleep(0.005)
        raise SystemExit(f"startup.py: no {'window' if 'mapped' not in out else ' / '.join(wait_for)} after {timeout} s")
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
    ap.add_argument("--trainer", action="store_true", help="also wait for the trainer process to have loaded torch")
    ap.add_argument("--script", default=os.path.join(ROOT, "main.py"), help="the program to start (default: main.py)")
    ap.add_argument("--only-window", action="store_true", help="stop at the window mapped (no NP_STARTUP_LOG)")
    args = ap.parse_args()
    wait_for = () if args.only_window else ("built", "trainer") if args.trainer else ("built",)
    xvfb = None
    display = args.display
    if display is None:
        xvfb, display = start_xvfb()
    try:
        # not counted: fills the OS file cache (and __pycache__) once, as any second start finds them
        one_run(display, [], wait_for=wait_for, script=args.script)
        runs = [one_run(display, [], wait_for=wait_for, script=args.script) for _ in range(args.runs)]
        if args.importtime:
            with open(args.importtime, "wb") as fh:  # -X importtime writes to stderr
                one_run(display, ["-X", "importtime"], stderr=fh, wait_for=wait_for, script=args.script)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)
    times = [r["mapped"] for r in runs]
    print("runs (wall s / app CPU s): " + "  ".join(f"{w:.3f}/{c:.2f}" for w, c in times))
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores: above ~1 other work competed with the app)")
    print(f"startup_median_s {statistics.median(w for w, _ in times):.3f} cpu_median_s "
          f"{statistics.median(c for _, c in times):.2f} (exec to window mapped, {args.runs} runs, display {display}, "
          f"{os.path.relpath(args.script, ROOT)})")
    for event, what in (("first_frame", "first frame drawn"), ("built", "whole window built: every view and presenter"),
                        ("trainer", "trainer process has loaded torch")):
        got = [r[event] for r in runs if event in r]
        if got:
            print(f"{event}_median_s {statistics.median(w for w, _ in got):.3f} cpu_median_s "
                  f"{statistics.median(c for _, c in got):.2f} (exec to {what})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
