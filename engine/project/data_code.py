"""The design's dataset as the source of a stand-alone ``data.py`` (numpy; scikit-learn for its sets).

The generating and reading code is copied from engine.datasets (``inspect.getsource``), so the
exported file makes the very arrays ``engine.datasets.load`` makes: same algorithm, same seed,
same split, same standardisation. Only an image folder is not re-read: its decoded, resized
pixels are written beside data.py (``data.npz``, already split and standardised), since reading
pictures needs Pillow and our resizing code.
"""
from __future__ import annotations

import inspect
import json
import re
import shutil

import numpy as np

from engine import datasets
from engine.datasets import base, idx, npz, regression, sequences, shapes, tabular
from engine.spec import DatasetSpec

SNAPSHOT_FILE = "data.npz"
CORPUS_FILE = "corpus.txt"


def _src(*objs) -> str:
    return "\n\n".join(inspect.getsource(o).rstrip("\n") + "\n" for o in objs)


def _module_body(mod) -> str:
    """A module's source without its docstring, its __future__ line and its imports of the engine."""
    text = inspect.getsource(mod)
    text = re.sub(r'^""".*?"""\n', "", text, count=1, flags=re.S)
    keep = [line for line in text.splitlines() if not line.startswith(("from __future__", "from engine", "import "))]
    return "\n".join(keep).strip("\n") + "\n"


_BASE_FILES = "MAX_PIXELS = 40_000_000\nMAX_BYTES = 2**31\n\n\n" + _src(base.check_file, base.scale_pixels)

_STANDARDISE = '''def standardise(xt, xv, scaling="standard"):
    """Zero mean, unit variance per feature (per channel for images) from the training set only;
    "minmax" maps the training range to 0..1, "none" keeps the raw numbers."""
    axes = (0, 2, 3) if xt.ndim == 4 else (0,)
    if scaling == "none":
        mean = np.zeros_like(xt.mean(axis=axes, keepdims=True))
        std = np.ones_like(mean)
    elif scaling == "minmax":
        mean = xt.min(axis=axes, keepdims=True)
        std = xt.max(axis=axes, keepdims=True) - mean
    else:
        mean = xt.mean(axis=axes, keepdims=True)
        std = xt.std(axis=axes, keepdims=True)
    std = np.where(std < 1e-8, 1.0, std)
    return ((xt - mean) / std).astype(np.float32), ((xv - mean) / std).astype(np.float32)
'''

_SEQ_STANDARDISE = '''def standardise(xt, xv):
    """One mean and spread per feature over all samples and steps (token ids are never scaled)."""
    if VOCAB:
        return xt.astype(np.float32), xv.astype(np.float32)
    mean = xt.mean(axis=(0, 1)).astype(np.float32)
    std = xt.std(axis=(0, 1)).astype(np.float32)
    std = np.where(std < 1e-8, 1.0, std).astype(np.float32)
    return ((xt - mean) / std).astype(np.float32), ((xv - mean) / std).astype(np.float32)
'''


def _family(kind: str) -> str:
    if kind in tabular.TWO_D:
        return "two_d"
    if kind in ("iris", "digits"):
        return "sklearn"
    if kind == "csv":
        return "csv"
    if kind in regression.PARAMS:
        return "regression"
    if kind in sequences.PARAMS:
        return "sequence"
    if kind in ("shapes", "idx", "npz"):
        return kind
    if kind == "image_folder":
        return "snapshot"
    raise ValueError(f"dataset.kind: {kind!r} cannot be exported as data.py")


def needs_sklearn(ds: DatasetSpec) -> bool:
    return ds.kind in ("iris", "digits")


def data_source(ds: DatasetSpec) -> str:
    """The text of data.py for dataset ``ds`` (its parameters resolved with their defaults)."""
    fam = _family(ds.kind)
    p = datasets.resolve_params(ds)
    info = datasets.describe(ds)
    head = _HEADER.format(kind=ds.kind, what=_WHAT[fam], task=info.task)
    imports = ["import numpy as np"]
    future = "from __future__ import annotations  # the copied functions' type hints stay unevaluated"
    consts = [f"KIND = {json.dumps(ds.kind)}", f"PARAMS = {_py(p)}"]
    funcs: list[str] = []
    if fam == "two_d":
        funcs = [_src(tabular._two_d, tabular._balanced, base.split), _STANDARDISE]
        body = _LOAD_TWO_D
    elif fam == "sklearn":
        funcs = [_src(base.split), _STANDARDISE]
        body = _LOAD_SKLEARN
    elif fam == "csv":
        imports = ["import csv", "import math", "import os", "", *imports]
        funcs = [_src(tabular._read_csv, tabular._num_key, base.split, regression.random_split), _STANDARDISE]
        body = _LOAD_CSV
    elif fam == "regression":
        consts.append(f"FUNCTIONS = {regression.FUNCTIONS!r}")
        funcs = [_src(regression.target, regression.generate, regression.random_split), _STANDARDISE]
        body = _LOAD_REGRESSION
    elif fam == "sequence":
        imports = ["import csv", "import math", "import os", "", *imports]
        consts += [f"VOCAB = {info.vocab}",
                   f'CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "{CORPUS_FILE}")']
        funcs = [_src(base.check_file, sequences._read_text, sequences._chars, sequences._series, sequences._windows,
                      sequences.generate, regression.random_split), _SEQ_STANDARDISE]
        body = _LOAD_SEQUENCE
    elif fam == "shapes":
        imports = ["import math", "", *imports]
        consts.append(f"SHAPE_NAMES = {shapes.SHAPE_NAMES!r}")
        funcs = [_module_body(shapes).replace(f"SHAPE_NAMES = {shapes.SHAPE_NAMES!r}\n", ""), _src(base.split),
                 _STANDARDISE]
        body = _LOAD_SHAPES
    elif fam in ("idx", "npz"):
        extra = ["import gzip", "import math", "import os", "import struct", "import zlib"] if fam == "idx" else \
            ["import math", "import os", "import zipfile"]
        imports = [*extra, "", *imports]
        funcs = [_BASE_FILES, _module_body(idx if fam == "idx" else npz), _src(base.split), _STANDARDISE]
        body = _LOAD_IDX if fam == "idx" else _LOAD_NPZ
    else:
        imports = ["import os", "", *imports]
        body = _LOAD_SNAPSHOT
    if any("Any]" in f or "Any," in f for f in funcs):
        imports = ["from typing import Any", *imports]
    parts = [head + "\n" + future + "\n\n" + "\n".join(imports), "\n".join(consts), *funcs, body, _FOOTER]
    return "\n\n".join(part.strip("\n") + "\n" for part in parts)


def write_extras(ds: DatasetSpec, outdir: str, data=None) -> list[str]:
    """Files data.py reads besides the user's own: the bundled corpus, an image folder's pixels."""
    import os

    written = []
    if ds.kind == "chars" and not datasets.resolve_params(ds).get("path"):
        shutil.copyfile(sequences.CORPUS, os.path.join(outdir, CORPUS_FILE))
        written.append(CORPUS_FILE)
    if _family(ds.kind) == "snapshot":
        data = data if data is not None else datasets.load(ds)
        target = os.path.join(outdir, SNAPSHOT_FILE)
        np.savez(target, x_train=data.x_train, y_train=data.y_train, x_val=data.x_val, y_val=data.y_val)
        written.append(SNAPSHOT_FILE)
    return written


def _py(value) -> str:
    """A Python literal (True/False/None, not JSON's true/false/null)."""
    return repr(value) if not isinstance(value, dict) else "{" + ", ".join(f"{k!r}: {v!r}" for k, v in value.items()) + "}"


_WHAT = {
    "two_d": "generated with the same algorithm and seed as the playground",
    "sklearn": "loaded from scikit-learn",
    "csv": "read from the CSV file at PARAMS['path'] (edit it if the file moved)",
    "regression": "generated with the same algorithm and seed as the playground",
    "sequence": "generated (or read from PARAMS['path']) with the same algorithm and seed as the playground",
    "shapes": "rendered with the same algorithm and seed as the playground",
    "idx": "read from the IDX files at PARAMS['images_path'] and PARAMS['labels_path']",
    "npz": "read from the .npz archive at PARAMS['path']",
    "snapshot": "read from data.npz: the image folder's pictures as the playground decoded and resized them",
}

_HEADER = '''"""The dataset "{kind}" ({task}):
{what}.

``load()`` returns (x_train, y_train, x_val, y_val) exactly as Neural Playground trains on them:
the same split and the same standardisation (training-set statistics only). Needs numpy only
(and scikit-learn for its own sets). Run ``python data.py`` to see the shapes.
"""'''

_LOAD_TWO_D = '''def load():
    rng = np.random.default_rng(PARAMS["seed"])
    x, y = _two_d(KIND, PARAMS, rng)
    x[:, 1] *= np.float32(PARAMS["x2_scale"])
    xt, yt, xv, yv = split(x, y, PARAMS["val_fraction"], rng)
    xt, xv = standardise(xt, xv, PARAMS["scaling"])
    return xt, yt, xv, yv
'''

_LOAD_SKLEARN = '''def load():
    rng = np.random.default_rng(PARAMS["seed"])
    if KIND == "iris":
        from sklearn.datasets import load_iris
        b = load_iris()
        x, y = b.data.astype(np.float32), b.target.astype(np.int64)
    else:
        from sklearn.datasets import load_digits
        b = load_digits()
        x, y = (b.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), b.target.astype(np.int64)
    xt, yt, xv, yv = split(x, y, PARAMS["val_fraction"], rng)
    xt, xv = standardise(xt, xv, PARAMS["scaling"])
    return xt, yt, xv, yv
'''

_LOAD_CSV = '''def load():
    rng = np.random.default_rng(PARAMS["seed"])
    if PARAMS["task"] == "regression":  # targets stay in their own units; inputs are z-scored
        _, _, (x, y) = _read_csv(PARAMS["path"], PARAMS["label_column"], numeric=True)
        xt, yt, xv, yv = random_split(x, y.reshape(len(y), -1), PARAMS["val_fraction"], rng)
        xt, xv = standardise(xt, xv)
        return xt, yt, xv, yv
    _, _, (x, y) = _read_csv(PARAMS["path"], PARAMS["label_column"])
    xt, yt, xv, yv = split(x, y, PARAMS["val_fraction"], rng)
    xt, xv = standardise(xt, xv, PARAMS["scaling"])
    return xt, yt, xv, yv
'''

_LOAD_REGRESSION = '''def load():
    rng = np.random.default_rng(PARAMS["seed"])
    x, y = generate(KIND, PARAMS, rng)
    y = np.asarray(y, np.float32).reshape(len(y), -1)  # targets stay in their own units
    xt, yt, xv, yv = random_split(np.asarray(x, np.float32), y, PARAMS["val_fraction"], rng)
    xt, xv = standardise(xt, xv)
    return xt, yt, xv, yv
'''

_LOAD_SEQUENCE = '''def load():
    rng = np.random.default_rng(PARAMS["seed"])
    x, y = generate(KIND, PARAMS, rng)
    xt, yt, xv, yv = random_split(x, y, PARAMS["val_fraction"], rng)
    xt, xv = standardise(xt, xv)
    return xt, yt, xv, yv
'''

_LOAD_SHAPES = '''def load():
    rng = np.random.default_rng(PARAMS["seed"])
    x, y = render_shapes(PARAMS["n_per_class"], PARAMS["size"], PARAMS["noise"], rng)
    xt, yt, xv, yv = split(x, y, PARAMS["val_fraction"], rng)
    xt, xv = standardise(xt, xv)
    return xt, yt, xv, yv
'''

_LOAD_IDX = '''def load():
    rng = np.random.default_rng(PARAMS["seed"])
    x, y, _ = idx_load(PARAMS, rng)
    xt, yt, xv, yv = split(x, y, PARAMS["val_fraction"], rng)
    xt, xv = standardise(xt, xv)
    return xt, yt, xv, yv
'''

_LOAD_NPZ = '''def load():
    rng = np.random.default_rng(PARAMS["seed"])
    _, _, (x, y) = npz_read(PARAMS["path"], with_x=True)
    xt, yt, xv, yv = split(x, y, PARAMS["val_fraction"], rng)
    xt, xv = standardise(xt, xv)
    return xt, yt, xv, yv
'''

_LOAD_SNAPSHOT = '''def load():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.npz")
    with np.load(path, allow_pickle=False) as f:  # never unpickle
        return f["x_train"], f["y_train"], f["x_val"], f["y_val"]
'''

_FOOTER = '''if __name__ == "__main__":
    xt, yt, xv, yv = load()
    print(f"{KIND}: train x {xt.shape} y {yt.shape} ({yt.dtype}), validation x {xv.shape} y {yv.shape}")'''
