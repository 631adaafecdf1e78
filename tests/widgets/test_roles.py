"""The widgets' roles, made executable: the live views and the paint vocabulary load with the
engine, torch, the app and the editor widgets all blocked, so a view can only ever be fed plain
numpy data. Each check runs in a fresh interpreter (the BLOCKER of tests/test_architecture.py),
so an earlier test having imported torch cannot hide a stray import.
"""
from tests.test_architecture import _modules, _run_blocked

BLOCKED = ["engine", "torch", "app", "widgets.editor"]


def _role_modules() -> list[str]:
    mods = _modules("widgets.views") + _modules("widgets.paint")
    assert "widgets.views.boundary" in mods and "widgets.paint.colorbar" in mods  # the walk found them
    return mods


def test_views_and_paint_load_without_engine_torch_app_or_editor():
    body = f"""
import importlib
for name in {_role_modules()!r}:
    importlib.import_module(name)
for blocked in {BLOCKED!r}:
    try:
        importlib.import_module(blocked)
    except ImportError as exc:
        assert "forbidden" in str(exc), exc
    else:
        raise SystemExit(f"{{blocked}} was importable: the blocker is not working")
from PySide6.QtWidgets import QApplication
app = QApplication([])
from widgets.views.boundary import NeuronMapView
NeuronMapView().clear()
print("ROLES OK")
"""
    r = _run_blocked(BLOCKED, body)
    assert r.returncode == 0 and "ROLES OK" in r.stdout, r.stderr


def test_the_check_fails_when_a_view_imports_torch(tmp_path):
    """The same harness, given a view that imports torch, must fail - or the test above proves nothing."""
    bad = tmp_path / "bad_view.py"
    bad.write_text("import numpy\nimport torch  # a view must never do this\n")
    body = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
import bad_view
"""
    r = _run_blocked(BLOCKED, body)
    assert r.returncode != 0 and "import of torch is forbidden" in r.stderr
