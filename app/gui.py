"""Start the desktop app: ``python main.py [DESIGN.json] [--screenshot OUT.png]``.

torch is not imported here: the window shows first and app.engine_loader brings torch in
from a background thread.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

SCREENSHOT_TIMEOUT_S = 90.0


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # no SystemExit from inside main(): report and return 2
        raise _ArgumentError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="main.py", description="Neural Playground - build neural networks by drag and drop and watch them learn.",
                epilog="`python main.py train DESIGN.json --help` trains without the GUI.")
    p.add_argument("design", nargs="?", help="a design (.json) or a saved run (.nprun) to open")
    p.add_argument("--screenshot", metavar="OUT.png", help="render the main window to a PNG and exit")
    p.add_argument("--train", action="store_true", help="start training the design as soon as the trainer is ready")
    p.add_argument("--install-desktop", action="store_true",
                   help="add Neural Playground to the Linux desktop's application menu (~/.local/share) and exit")
    return p


def main(argv: list[str]) -> int:
    parser = _parser()
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(argv)
    except _ArgumentError as exc:
        print(f"main.py: {exc}\n{parser.format_usage().strip()}", file=sys.stderr)
        return 2
    if args.install_desktop:
        from app.desktop import install_desktop_entry

        print(f"installed {install_desktop_entry()}")
        return 0
    if args.design and not os.path.isfile(args.design):
        print(f"main.py: no design file at {args.design}", file=sys.stderr)
        return 2
    if args.screenshot:
        folder = os.path.dirname(os.path.abspath(args.screenshot))
        if not os.path.isdir(folder):
            print(f"main.py: cannot write {args.screenshot}: folder {folder} does not exist", file=sys.stderr)
            return 2

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
        if not args.screenshot and sys.platform.startswith("linux"):
            print("main.py: no display found - run it on a desktop, set DISPLAY, or use --screenshot OUT.png",
                  file=sys.stderr)
            return 2
        if sys.platform.startswith("linux"):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
    from app.desktop import APP_ID, qt_platform_problem

    problem = qt_platform_problem()  # before Qt: its own message is a bare abort
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from widgets import pyside_fix

    pyside_fix.install()  # before any Qt signal is emitted; see the module's docstring
    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtWidgets import QApplication

    from app.document import read_design
    from app.file_ops import problems_text
    from engine.spec import SpecError

    QCoreApplication.setOrganizationName(os.environ.get("NP_SETTINGS_ORG") or "NeuralPlayground")
    QCoreApplication.setApplicationName("Neural Playground")
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setStyle("Fusion")
    from PySide6.QtGui import QIcon

    from assets import ICON

    app.setDesktopFileName(APP_ID)  # Wayland and the task bar match the window to the .desktop entry
    app.setWindowIcon(QIcon(ICON))

    spec, open_error = None, ""
    run_path = args.design if args.design and args.design.lower().endswith(".nprun") else None
    if args.design and not run_path:
        try:
            spec = read_design(args.design)
        except SpecError as exc:
            open_error = f"{os.path.basename(args.design)} was not opened:\n\n{problems_text(exc.problems)}"
            if args.screenshot:
                print(f"main.py: {open_error}", file=sys.stderr)
                return 2

    # a screenshot shows the default layout and leaves the user's saved layout alone
    from app.compare import CompareController
    from app.kernel_lab import KernelLabController
    from app.lessons import LessonsController
    from app.main_window import MainWindow
    from app.runfiles import RunFilesController
    from app.training import TrainingController

    # lazy: the window shows with the editor and placeholder docks; the views follow after the first frame
    win = MainWindow(spec, restore=not args.screenshot, lazy=True,
                     features=(TrainingController, LessonsController, KernelLabController, CompareController,
                               RunFilesController))
    if os.environ.get("NP_STARTUP_LOG"):
        _log_startup(win, os.environ["NP_STARTUP_LOG"])
    if spec is not None:
        win.document.reset(spec, args.design)
        win.add_recent(args.design)
    win.show()
    if open_error:
        QTimer.singleShot(0, lambda: win.show_error("Cannot open design", open_error))
    if run_path:
        QTimer.singleShot(0, lambda: win.runfiles.open_run(run_path))
    if args.train:  # once torch is loaded (scripts, and the crash-restore test)
        win.engine.engine_ready.connect(lambda *_a: win.training.train())
    if args.screenshot:
        code = _screenshot(app, win, args.screenshot)
    else:
        code = app.exec()
        win.engine.wait(5.0)  # let a half-finished torch import end before the interpreter does
    destroy_window(win)
    return code


def _log_startup(win, path: str) -> None:
    """For bench/startup.py: append "event perf_counter cpu_seconds" lines when the first frame was
    drawn, the whole window was built and (with training) the trainer process has loaded torch."""
    def write(event: str, times: tuple[float, float]) -> None:
        with open(path, "a") as fh:
            fh.write(f"{event} {times[0]:.4f} {times[1]:.4f}\n")

    def on_built() -> None:
        for event, times in win.startup_times.items():
            write(event, times)

    win.built.connect(on_built)
    training = getattr(win, "training", None)
    if training is not None:
        training.session.worker_ready.connect(lambda *_a: write("trainer", (time.perf_counter(), time.process_time())))


def destroy_window(win) -> None:
    """Delete a closed window's widgets now, while Python still runs (call it after ``close()``).

    At exit: left to PySide's exit handler, Qt destroyed them after the interpreter had begun to
    finalise, and a pyqtgraph item of a dock that had never been shown got a layout event whose
    Python handler crashed the process (SIGSEGV at exit, after the work was done).

    While the application goes on (a script or benchmark that closes and opens windows): a closed
    window is only hidden, and Python's garbage collector cannot free it - Qt holds the slots
    connected to its children's signals (lambdas and bound methods that reference the window), so
    the window, its views and their last snapshots live as long as its C++ object. ``deleteLater``
    alone does not end that outside a running event loop: ``processEvents`` never delivers the
    deferred deletion (bench/reliability.py grew by ~30 MB per reopened window, 2.9 GB per 100)."""
    from PySide6.QtCore import QCoreApplication, QEvent

    win.setParent(None)
    win.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()


def _screenshot(app, win, out: str) -> int:
    """Wait until the engine and the preview are done and the layout has settled, then grab."""
    deadline = time.monotonic() + SCREENSHOT_TIMEOUT_S
    while win.is_busy() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    settle = time.monotonic() + 0.4
    while time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.02)
    win.canvas.fit_to_view()
    app.processEvents()
    image = win.grab().toImage()
    ok = image.save(out, "PNG")
    win.document.undo_stack.setClean()  # nothing to ask on close
    win.close()
    win.engine.wait(5.0)
    if not ok:
        print(f"main.py: could not write the screenshot to {out}", file=sys.stderr)
        return 1
    print(f"saved {out}")
    return 0
