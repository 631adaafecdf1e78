"""Background loading: results arrive on the GUI thread; stale previews are dropped; failures are reported."""
import threading
import time

from PySide6.QtCore import QThread

from app.engine_loader import EngineLoader, TaskRunner


def test_engine_ready_arrives_on_the_gui_thread(qtbot):
    seen = {}

    def load():
        seen["loader_thread"] = threading.current_thread()
        return "Test device"

    loader = EngineLoader(load=load)
    got = []
    loader.engine_ready.connect(lambda dev: got.append((dev, QThread.currentThread())))
    with qtbot.waitSignal(loader.engine_ready, timeout=5000):
        loader.start()
    assert got == [("Test device", loader.thread())]
    assert seen["loader_thread"] is not threading.main_thread()
    assert loader.ready and loader.device == "Test device"


def test_a_broken_engine_is_reported_not_raised(qtbot):
    def load():
        raise OSError("libtorch_cpu.so: cannot open shared object file")

    loader = EngineLoader(load=load)
    with qtbot.waitSignal(loader.engine_failed, timeout=5000) as sig:
        loader.start()
    assert "libtorch_cpu.so" in sig.args[0] and not loader.ready


def test_only_the_latest_result_per_key_is_delivered(qtbot):
    runner = TaskRunner()
    got = []
    runner.task_done.connect(lambda key, result, error: got.append((key, result, error)))
    gate = threading.Event()

    def slow():
        gate.wait(5)
        return "old"

    runner.submit("preview", slow)
    runner.submit("preview", lambda: "new")
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    gate.set()
    runner.wait(5)
    time.sleep(0.05)
    qtbot.wait(50)
    assert got == [("preview", "new", "")] and not runner.busy()


def test_task_errors_become_messages(qtbot):
    runner = TaskRunner()

    def bad():
        raise ValueError("data.csv line 3: 'x' is not a number")

    with qtbot.waitSignal(runner.task_done, timeout=5000) as sig:
        runner.submit("preview", bad)
    assert sig.args == ["preview", None, "data.csv line 3: 'x' is not a number"]
