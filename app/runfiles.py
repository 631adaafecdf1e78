"""File > Save run... / Open run... (``.nprun``, engine.runfile), autosave and restore after a crash.

A run file holds the design, the trained weights, the optimiser and schedule state, the curves'
history, the counters and the random generators (engine.run_state). Opening one puts the design
on the canvas and starts its run *paused* exactly where it was saved: the curves show the whole
history, the views show the saved model, and Train goes on as if the run had never stopped.

Autosave: while the app runs, the open design (when modified: at most every DESIGN_INTERVAL_S)
and the current run (at most every RUN_INTERVAL_S while it trains, and whenever it pauses or
ends) are written to ``<data folder>/autosave/<pid>.nprun``, beside ``<pid>.lock``, which names
the process. A clean exit removes both. At start, an autosave whose process is gone (it crashed
or was killed) is offered back (ask_restore_autosave, which tests replace). The data folder is
QStandardPaths' AppDataLocation, or NEURAL_PLAYGROUND_DATA when set (tests).
"""
from __future__ import annotations

import json
import os
import time

from PySide6.QtCore import QObject, QStandardPaths, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.run import Run, structure_key
from engine import protocol as P
from engine import runfile
from engine import spec as S

RUN_FILTER = f"Neural Playground runs (*{runfile.EXTENSION});;All files (*)"
DESIGN_INTERVAL_S = 30.0
RUN_INTERVAL_S = 60.0
PENDING_S = 10.0  # a save still waiting for the worker's answer after this long is asked again
SAVE_WHEN = ("paused", "finished", "stopped", "diverged")  # run states that are autosaved at once


def data_folder() -> str:
    """Where the app keeps its own files (autosaves): NEURAL_PLAYGROUND_DATA, else AppDataLocation."""
    folder = os.environ.get("NEURAL_PLAYGROUND_DATA") or QStandardPaths.writableLocation(
        QStandardPaths.AppDataLocation) or os.path.join(os.path.expanduser("~"), ".neural-playground")
    return folder


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _intervals() -> tuple[float, float]:
    """(design, run) autosave intervals; NP_AUTOSAVE_S="design,run" seconds overrides them (tests)."""
    text = os.environ.get("NP_AUTOSAVE_S", "")
    try:
        parts = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    return (parts[0], parts[1]) if len(parts) == 2 else (DESIGN_INTERVAL_S, RUN_INTERVAL_S)


class RunFilesController(QObject):
    """Adds Save run / Open run to the File menu and keeps an autosave; needs app.training's controller."""

    run_saved = Signal(str, int)  # path, bytes written
    save_failed = Signal(str, str)  # path, message

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        window.runfiles = self
        self.training = window.training
        self.folder = os.path.join(data_folder(), "autosave")
        self.autosave_path = os.path.join(self.folder, f"{os.getpid()}{runfile.EXTENSION}")
        self.lock_path = os.path.join(self.folder, f"{os.getpid()}.lock")
        self.last_message = ""
        self.run_path = ""  # the run file last saved or opened: Save Run's suggestion
        self.last_autosave = 0.0  # perf_counter of the last autosave written
        # (run id, path, when asked) of saves waiting for the worker's RunState; a run closed before its
        # trainer got to the request never answers, so an old entry does not block the next save
        self._pending: list[tuple[int, str, float]] = []
        self._run_saved_at = 0.0
        design_s, self.run_interval = _intervals()
        self._build_menu()
        self._design_timer = QTimer(self)
        self._design_timer.setSingleShot(True)
        self._design_timer.setInterval(int(design_s * 1000))
        self._design_timer.timeout.connect(self._autosave_design)
        window.document.spec_changed.connect(self._on_document_spec_changed)
        self.training.session.run_state_ready.connect(self._on_session_run_state)
        self.training.model.events.state.connect(self._on_model_state)
        self.training.model.events.snapshot.connect(self._on_model_snapshot)
        self.training.model.events.data.connect(self._on_model_data)
        self._views_pending: dict | None = None  # a run file's view choices, set once its run's data is known
        self._write_lock()
        if window.persist_layout:  # not for a --screenshot, which must never wait for an answer
            QTimer.singleShot(0, self.offer_restore)

    # ---- menu -----------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        w = self.w
        save = QAction("Save R&un...", w)
        save.setShortcut("Ctrl+Alt+S")
        save.setStatusTip("Save the design with its trained model, optimiser state and curves, to go on later")
        save.triggered.connect(lambda _c=False: self.save_run())
        opened = QAction("Open Ru&n...", w)
        opened.setShortcut("Ctrl+Alt+O")
        opened.setStatusTip("Open a saved run: the design, its curves and its model, paused where it was saved")
        opened.triggered.connect(lambda _c=False: self.open_run())
        w.actions["save_run"], w.actions["open_run"] = save, opened
        menu = w.menus.get("file")
        if menu is not None:  # after Save As, before the separator that follows it
            acts = menu.actions()
            before = w.actions.get("save_as")
            anchor = acts[acts.index(before) + 1] if before in acts and acts.index(before) + 1 < len(acts) else None
            for act in (opened, save):
                menu.insertAction(anchor, act) if anchor is not None else menu.addAction(act)

    # ---- prompts (tests replace these) ------------------------------------------------------------
    def ask_run_save_path(self) -> str:
        name = (self.w.document.spec.name or "run").replace(os.sep, "_")
        start = self.run_path or os.path.join(self.w._last_dir(), name + runfile.EXTENSION)
        path, _ = QFileDialog.getSaveFileName(self.w, "Save run", start, RUN_FILTER)
        if path and not path.lower().endswith(runfile.EXTENSION):
            path += runfile.EXTENSION
        return path

    def ask_run_open_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self.w, "Open run", self.w._last_dir(), RUN_FILTER)
        return path

    def ask_restore_autosave(self, text: str) -> bool | None:
        """Restore (True) or discard (False) the work of a session that ended without closing;
        None (the box closed with Esc) keeps the autosave for the next start."""
        box = QMessageBox(QMessageBox.Question, "Restore unsaved work?", text, QMessageBox.NoButton, self.w)
        restore = box.addButton("Restore", QMessageBox.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.DestructiveRole)
        box.setDefaultButton(restore)
        box.exec()
        clicked = box.clickedButton()
        return True if clicked is restore else False if clicked is discard else None

    # ---- save -----------------------------------------------------------------------------------
    def _current_run(self) -> Run | None:
        run = self.training.model.run
        return run if run is not None and run.data is not None and run.state != "error" else None

    def _spec_json_for(self, run: Run | None) -> str:
        """The document's design when the run belongs to it (same structure), else the run's own design."""
        doc = self.w.document.spec
        if run is None or structure_key(doc) == run.key:
            return S.dumps(doc)
        return S.dumps(run.spec)

    def save_run(self, path: str | None = None) -> bool:
        """Save the design and its run (if any) to ``path`` (asked for when None). With a run the
        worker is asked for its state first; run_saved or save_failed says how it went."""
        if path is None:
            path = self.ask_run_save_path()
            if not path:
                return False
        path = os.fspath(path)
        run = self._current_run()
        if run is None or not self._request_state(run.run_id, path):
            return self._write(path, self._spec_json_for(None), None)
        self.w.status(f"Saving the run to {os.path.basename(path)}...", 0)
        return True

    def _request_state(self, run_id: int, path: str) -> bool:
        now = time.perf_counter()
        if any(r == run_id and p == path and now - t < PENDING_S for r, p, t in self._pending):
            return True  # already on its way
        self._pending = [e for e in self._pending if e[1] != path] + [(run_id, path, now)]
        if not self.training.session.send(P.FetchRunState(run_id)):
            self._pending.pop()
            return False
        return True

    def _on_session_run_state(self, ev: P.RunState) -> None:
        mine = [p for r, p, _t in self._pending if r == ev.run_id]
        self._pending = [e for e in self._pending if e[0] != ev.run_id]
        run = self.training.model.run
        for path in mine:
            if ev.state is None:  # a run the file cannot hold (a GAN): the design alone
                if path != self.autosave_path:
                    self._fail(path, f"{ev.error}\n\nThe design alone was saved to {path}.")
                self._write(path, self._spec_json_for(None), None, quiet=path == self.autosave_path)
                continue
            key_run = run if run is not None and run.run_id == ev.run_id else None
            self._write(path, self._spec_json_for(key_run), ev.state, quiet=path == self.autosave_path)

    def _write(self, path: str, spec_json: str, state: dict | None, quiet: bool = False) -> bool:
        t0 = time.perf_counter()
        try:
            size = runfile.write_run(path, spec_json, state, self.training.model.view_options)
        except (OSError, ValueError) as exc:
            if not quiet:
                self._fail(path, f"{path} could not be written: {getattr(exc, 'strerror', None) or exc}\n\n"
                                 "Nothing was lost: the design and the run are still open; choose another folder.")
            return False
        if path == self.autosave_path:
            self.last_autosave = time.perf_counter()
        if not quiet:
            what = f"run at epoch {state['epoch']}" if state else "design"
            self.w.status(f"Saved the {what} to {os.path.basename(path)} "
                          f"({size / 1024:,.0f} KB, {time.perf_counter() - t0:.2f} s)")
            self.w.settings.setValue("files/last_dir", os.path.dirname(os.path.abspath(path)))
            self.run_path = path
            self.w.add_recent(path)  # File > Open Recent opens runs too (FileOps.open_path)
        self.run_saved.emit(path, size)
        return True

    def _fail(self, path: str, message: str) -> None:
        self.last_message = message
        self.save_failed.emit(path, message)
        self.w.show_error("Cannot save run", message)

    # ---- open -----------------------------------------------------------------------------------
    def open_run(self, path: str | None = None) -> bool:
        """Open a run file; a file that cannot be used leaves the open design (and run) untouched."""
        if path is None:
            path = self.ask_run_open_path()
            if not path:
                return False
        path = os.fspath(path)
        t0 = time.perf_counter()
        try:
            rf = runfile.read_run(path)
        except runfile.RunFileError as exc:
            self.last_message = str(exc)
            self.w.show_error("Cannot open run", f"{os.path.basename(path)} was not opened - the current design "
                                                 f"is unchanged.\n\n{exc}")
            return False
        if not self.w.maybe_save():
            return False
        self.restore(rf)
        self.run_path = path
        self.w.add_recent(path)
        self.w.settings.setValue("files/last_dir", os.path.dirname(os.path.abspath(path)))
        where = f"paused at epoch {rf.epoch} - press Train to go on" if rf.state else "the design (no run was saved)"
        self.w.status(f"Opened run {os.path.basename(path)}: {where} ({time.perf_counter() - t0:.2f} s)", 0)
        return True

    def restore(self, rf: runfile.RunFile) -> None:
        """Put a run file's design on the canvas and start its run paused where it was saved."""
        ctl = self.training
        self.w.finish_building()  # a restore offered at start-up may come before the views are built
        ctl.reset()  # the old run goes first: the new design is no edit of it
        spec = S.loads(rf.spec_json)
        self.w.document.reset(spec, None)
        dims = rf.view_options.get("dims")
        if dims is not None:  # the boundary's chosen plane (what is computed follows the docks shown)
            self.w.views.boundary.set_projection(tuple(dims) if isinstance(dims, list) else dims)
        ctl.options.update()
        if rf.state is None:
            return
        self._views_pending = dict(rf.view_options)  # the sample and saliency choices need the run's data
        ctl.open_state(spec, rf.state["weights"], rf.state)

    def _on_model_data(self, _data) -> None:
        """The restored run's data arrived: show the sample and the saliency choices that were saved."""
        opts, self._views_pending = self._views_pending, None
        if not opts:
            return
        v = self.w.views
        if isinstance(opts.get("feature_sample"), int):
            v.feature_maps.set_current_index(opts["feature_sample"])
        sal = opts.get("saliency")
        if isinstance(sal, dict):
            try:
                v.saliency.set_options(sal.get("method"), sal.get("target"), sal.get("layer"))
            except ValueError:
                pass  # a method this version does not have: the view keeps its own
        self.training.options.update()

    # ---- autosave -------------------------------------------------------------------------------
    def _write_lock(self) -> None:
        try:
            os.makedirs(self.folder, exist_ok=True)
            S.write_text_atomic(self.lock_path, json.dumps({"pid": os.getpid(), "started": time.time()}))
        except OSError as exc:
            self.w.status(f"Autosave is off: cannot write to {self.folder} ({exc.strerror or exc})")
            self.lock_path = ""

    def _on_document_spec_changed(self) -> None:
        if not self._design_timer.isActive():
            self._design_timer.start()  # at most one autosave per interval, however many edits

    def _autosave_design(self) -> None:
        if self._current_run() is not None:
            self.autosave_run()  # the run's file holds the design too
        elif self.lock_path and self.w.document.is_modified():  # (the undo stack counts the edit after the signal)
            self._write(self.autosave_path, self._spec_json_for(None), None, quiet=True)

    def autosave_run(self) -> None:
        run = self._current_run()
        if run is None or not self.lock_path:
            return
        self._run_saved_at = time.perf_counter()
        if not self._request_state(run.run_id, self.autosave_path):
            self._write(self.autosave_path, self._spec_json_for(None), None, quiet=True)

    def _on_model_state(self, state: str) -> None:
        if state in SAVE_WHEN:
            QTimer.singleShot(0, self.autosave_run)  # after the run model has taken the new state in

    def _on_model_snapshot(self, *_a) -> None:
        snap = self.training.model.snapshot
        if (snap is not None and snap.state == "running" and snap.epoch >= 1
                and time.perf_counter() - self._run_saved_at >= self.run_interval):
            self.autosave_run()

    def shutdown(self) -> None:
        """A clean exit: this session's autosave is not needed any more."""
        self._design_timer.stop()
        for p in (self.autosave_path, self.lock_path):
            if p:
                try:
                    os.remove(p)
                except OSError:
                    pass
        self.lock_path = ""

    # ---- crash restore --------------------------------------------------------------------------
    def stale_autosaves(self) -> list[str]:
        """Autosaves (newest first) of sessions whose process is gone without a clean exit."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return []
        found = []
        for name in names:
            if not name.endswith(".lock"):
                continue
            lock = os.path.join(self.folder, name)
            try:
                with open(lock, encoding="utf-8") as fh:
                    pid = int(json.load(fh).get("pid", 0))
            except (OSError, ValueError, AttributeError):
                pid = 0
            if pid == os.getpid() or pid_alive(pid):
                continue  # this session, or another window that is still open
            saved = os.path.join(self.folder, name[:-len(".lock")] + runfile.EXTENSION)
            if os.path.isfile(saved):
                found.append(saved)
            else:
                _remove(lock)  # it crashed before anything was worth saving
        return sorted(found, key=os.path.getmtime, reverse=True)

    def offer_restore(self) -> bool:
        """Offer the newest autosave of a session that did not end cleanly; True if restored."""
        stale = self.stale_autosaves()
        if not stale:
            return False
        path = stale[0]
        try:
            rf = runfile.read_run(path)
        except runfile.RunFileError as exc:
            self.w.status(f"An autosave could not be read and was removed: {exc}")
            _discard(path)
            return False
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(path)))
        name = S.loads(rf.spec_json).name or "untitled"
        what = (f'the design "{name}" with its run at epoch {rf.epoch}' if rf.state
                else f'the design "{name}" (not yet trained)')
        text = (f"Neural Playground did not close properly last time. An autosave from {when} holds {what}.\n\n"
                "Restore it? Discard deletes it.")
        answer = self.ask_restore_autosave(text)
        if answer is None:
            self.w.status("The autosave of the last session is kept - it is offered again at the next start")
            return False
        if not answer:
            _discard(path)
            self.w.status("Discarded the autosave of the last session")
            return False
        self.restore(rf)
        self.w.document.undo_stack.resetClean()  # unsaved work: closing asks to save it
        try:  # it is this session's autosave now, until this session writes its own
            os.replace(path, self.autosave_path)
        except OSError:
            pass
        _discard(path)
        for other in stale[1:]:
            _discard(other)
        self.w.status(f"Restored {what} from the autosave" + (" - paused, press Train to go on" if rf.state else ""), 0)
        return True


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _discard(autosave: str) -> None:
    """Remove an autosave and its lock."""
    _remove(autosave)
    _remove(autosave[:-len(runfile.EXTENSION)] + ".lock")

