"""The import rules, made executable: main.py -> app -> {widgets, engine}; engine knows no Qt;
widgets know no torch, trainer, builder or app; design metadata loads without torch.

Each runtime check imports in a fresh interpreter with the forbidden packages blocked by a
sys.meta_path finder, so a stray import fails loudly instead of passing because another
test had already imported the package.
"""
import ast
import os
import pkgutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BLOCKER = """
import sys
BLOCKED = {blocked!r}
class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"import of {{name}} is forbidden here")
        return None
sys.meta_path.insert(0, _Blocker())
sys.path.insert(0, {root!r})
"""


def _run_blocked(blocked: list[str], body: str, timeout: float = 180) -> subprocess.CompletedProcess:
    code = BLOCKER.format(blocked=blocked, root=ROOT) + body
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _modules(package: str) -> list[str]:
    """Every module of ``package``, sub-packages included (dotted names)."""
    root = os.path.join(ROOT, *package.split("."))
    return sorted(m.name for m in pkgutil.walk_packages([root], prefix=package + "."))


def test_the_blocker_really_blocks():
    r = _run_blocked(["json"], "import json\n")
    assert r.returncode != 0 and "forbidden" in r.stderr


def test_engine_imports_builds_and_trains_without_qt():
    body = f"""
import importlib
for name in {_modules("engine")!r}:
    importlib.import_module(name)
import torch
from engine.build import build
from engine.spec import Spec, LayerSpec, EdgeSpec
spec = Spec()
spec.layers = [LayerSpec("input1", "Input"), LayerSpec("dense1", "Dense", {{"units": 4}}), LayerSpec("output1", "Output")]
spec.edges = [EdgeSpec("input1", "dense1"), EdgeSpec("dense1", "output1")]
torch.manual_seed(0)
net = build(spec)
x, y = torch.randn(16, 2), torch.randint(0, 2, (16,))
opt = torch.optim.SGD(net.parameters(), lr=0.5)
before = torch.nn.functional.cross_entropy(net(x), y)
before.backward()
opt.step()
after = torch.nn.functional.cross_entropy(net(x), y)
assert after.item() < before.item(), (before.item(), after.item())
print("TRAINED")
"""
    r = _run_blocked(["PySide6", "shiboken6", "pyqtgraph", "app", "widgets"], body)
    assert r.returncode == 0 and "TRAINED" in r.stdout, r.stderr


def test_design_metadata_loads_without_torch():
    body = """
from engine import spec as S, layers as L, datasets
d = S.Spec()
d.layers = [S.LayerSpec("input1", "Input"), S.LayerSpec("conv1", "Conv2d"), S.LayerSpec("output1", "Output")]
d.edges = [S.EdgeSpec("input1", "conv1"), S.EdgeSpec("conv1", "output1")]
d.dataset = S.DatasetSpec("digits", {})
info = datasets.describe(d.dataset)
rep = L.infer(d, info)
assert rep.shapes["conv1"] == (8, 8, 8) and "output1" in rep.node_errors
assert S.loads(S.dumps(d)).to_dict() == d.to_dict()
assert S.validate(d)
assert datasets.all_kinds()
print("METADATA")
"""
    r = _run_blocked(["torch", "sklearn"], body)
    assert r.returncode == 0 and "METADATA" in r.stdout, r.stderr


def test_every_widget_imports_without_torch_trainer_builder_or_app():
    body = f"""
import importlib
for name in {_modules("widgets")!r}:
    importlib.import_module(name)
print("WIDGETS")
"""
    r = _run_blocked(["torch", "engine.trainer", "engine.build", "engine.export", "engine.probes", "app"], body)
    assert r.returncode == 0 and "WIDGETS" in r.stdout, r.stderr


def _imports(path: str) -> list[tuple[int, str]]:
    """(line, module) for every import statement, including those inside functions."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    top = os.path.join(ROOT, *package.split("."))
    for folder, _, files in sorted(os.walk(top)):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)
                for line, mod in _imports(path):
                    if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                        bad.append(f"{rel}:{line} imports {mod}")
    return bad


@pytest.mark.parametrize("package, forbidden", [
    ("engine", ("PySide6", "shiboken6", "pyqtgraph", "app", "widgets")),
    ("widgets", ("torch", "app", "engine.trainer", "engine.build", "engine.export", "engine.probes")),
    ("widgets.views", ("torch", "app", "engine", "widgets.editor", "widgets.controls")),
    ("widgets.paint", ("torch", "app", "engine", "widgets.editor", "widgets.views", "widgets.controls")),
])
def test_static_import_rules(package, forbidden):
    assert _violations(package.replace(".", os.sep), forbidden) == []


def test_the_module_walk_sees_sub_packages():
    mods = _modules("widgets")
    assert "widgets.views.boundary" in mods and "widgets.paint.colormaps" in mods and "widgets.editor.canvas" in mods


def test_the_static_check_sees_imports_inside_functions(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from PySide6 import QtCore\n    import torch.nn\n")
    assert [m for _, m in _imports(str(p))] == ["PySide6", "PySide6.QtCore", "torch.nn"]
