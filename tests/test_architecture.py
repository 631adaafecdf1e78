"""The import rules, made executable: main.py -> app -> {widgets, engine}; engine knows no Qt;
widgets know no torch, trainer, builder or app; design metadata loads without torch; the
engine's modules import one way (no circles, imports inside functions included).

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
import importlib
from engine import spec as S, layers as L, datasets, validation as V
for name in ("engine.datasets.base", "engine.datasets.tabular", "engine.datasets.images", "engine.datasets.shapes",
             "engine.datasets.idx", "engine.datasets.npz"):
    importlib.import_module(name)
d = S.Spec()
d.layers = [S.LayerSpec("input1", "Input"), S.LayerSpec("conv1", "Conv2d"), S.LayerSpec("output1", "Output")]
d.edges = [S.EdgeSpec("input1", "conv1"), S.EdgeSpec("conv1", "output1")]
d.dataset = S.DatasetSpec("digits", {})
info = datasets.describe(d.dataset)
rep = L.infer(d, info)
assert rep.shapes["conv1"] == (8, 8, 8) and "output1" in rep.node_errors
assert S.loads(S.dumps(d)).to_dict() == d.to_dict()
assert V.validate(d)
assert datasets.all_kinds()
assert datasets.describe(S.DatasetSpec("shapes", {})).input_shape == (1, 28, 28)
print("METADATA")
"""
    r = _run_blocked(["torch", "sklearn", "PIL"], body)
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


def _sources(package_dir: str) -> list[str]:
    """Every .py file under ``package_dir``, subpackages included, as paths relative to it."""
    out = []
    for folder, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        out += [os.path.relpath(os.path.join(folder, f), package_dir) for f in sorted(files) if f.endswith(".py")]
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


# ---- no import circles in engine/ ------------------------------------------------------------

def import_graph(package_dir: str) -> dict[str, set[str]]:
    """{module: modules of the same package it imports}, every import at any depth counted.

    Module names are dotted from the package's own name (``engine.datasets.base``); a
    package's ``__init__`` is the package itself (``engine.datasets``). ``from engine.x import
    y`` is an edge to ``engine.x`` and, when it is a module, to ``engine.x.y``: it needs
    engine.x's ``__init__`` to have run. So a module of a subpackage imports its siblings as
    ``from engine.datasets.base import ...``, never through ``from engine.datasets import``.
    Relative imports are resolved against the importing module. The top package ``engine``
    itself is no edge: its ``__init__`` is empty.
    """
    top = os.path.basename(os.path.normpath(package_dir))
    paths = {}
    for rel in _sources(package_dir):
        parts = [top, *rel[:-3].split(os.sep)]
        if parts[-1] == "__init__":
            parts.pop()
        paths[".".join(parts)] = os.path.join(package_dir, rel)
    graph: dict[str, set[str]] = {m: set() for m in paths}
    for mod, path in paths.items():
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        is_package = path.endswith("__init__.py")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = mod.split(".")
                    anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for name in names:
                while name and name not in paths:  # engine.x.func -> engine.x
                    name = name.rpartition(".")[0]
                if name and name != mod and name != top:
                    graph[mod].add(name)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of modules that import each other round a loop (strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_engine_has_no_import_circles():
    graph = import_graph(os.path.join(ROOT, "engine"))
    assert {"engine.spec", "engine.validation", "engine.datasets.images", "engine.probes"} <= set(graph)
    assert import_cycles(graph) == []


def test_engine_layers_point_one_way():
    """The bottom of the engine stays free of what sits above it."""
    graph = import_graph(os.path.join(ROOT, "engine"))
    assert graph["engine.spec"] <= {"engine.generative_spec", "engine.sweep_spec"} and graph["engine.generative_spec"] == set()
    assert graph["engine.sweep_spec"] == set()
    assert graph["engine.modules"] == set() and graph["engine.model_utils"] == set()
    assert "engine.build" not in graph["engine.layers"]
    assert "engine.probes" not in graph["engine.saliency"]


def _write_package(root, files: dict[str, str]) -> str:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root / "pkg")


@pytest.mark.parametrize("files, circle", [
    # an import inside a function closes the loop
    ({"__init__.py": "", "a.py": "from pkg import b\n", "b.py": "def f():\n    from pkg.a import thing\n"},
     ["pkg.a", "pkg.b"]),
    # three modules round a loop, one of them relative
    ({"__init__.py": "", "a.py": "import pkg.b\n", "b.py": "from . import c\n", "c.py": "from pkg.a import x\n"},
     ["pkg.a", "pkg.b", "pkg.c"]),
    # a subpackage's __init__ and a module of it that reaches back through the package
    ({"__init__.py": "", "sub/__init__.py": "from pkg.sub import leaf\n", "sub/leaf.py": "from pkg.sub import other\n",
      "sub/other.py": ""}, ["pkg.sub", "pkg.sub.leaf"]),
])
def test_the_circle_check_finds_circles(tmp_path, files, circle):
    assert import_cycles(import_graph(_write_package(tmp_path, files))) == [circle]


def test_the_circle_check_accepts_one_way_imports(tmp_path):
    files = {"__init__.py": "", "a.py": "", "b.py": "from pkg.a import x\n",
             "c.py": "import pkg.b\ndef f():\n    from pkg import a\n",
             "sub/__init__.py": "from pkg.sub import leaf\n", "sub/leaf.py": "from pkg.sub.base import y\n",
             "sub/base.py": "from pkg import a\n"}
    graph = import_graph(_write_package(tmp_path, files))
    assert graph["pkg.c"] == {"pkg.a", "pkg.b"} and graph["pkg.sub.leaf"] == {"pkg.sub.base"}
    assert import_cycles(graph) == []
