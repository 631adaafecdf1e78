"""NumPy .npz archives of images and labels; never unpickled (``allow_pickle=False``)."""
from __future__ import annotations

import math
import zipfile

import numpy as np

from engine.datasets.base import MAX_BYTES, check_file, scale_pixels


def npz_read(path: str, with_x: bool):
    """((C, H, W), class names, (x float32 (N, C, H, W) or None, y int64 codes)).

    Always ``allow_pickle=False``: a .npz may come from anyone, and unpickling runs code.
    Without ``with_x`` only x's header is read, so describe stays cheap for big archives.
    """
    field = "dataset.params.path"
    name = check_file(path, "path", "a .npz file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{field}: {name} is not a .npz archive - save it with np.savez(path, x=images, y=labels)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            for k in ("x", "y"):
                if k not in keys:
                    raise ValueError(f"{field}: {name} has no array '{k}' (it has {', '.join(sorted(keys)) or 'none'}) - "
                                     "save with np.savez(path, x=images, y=labels)")
            n, chw, perm = _npz_layout(*_npz_header(npz, "x", name), name, field)  # before reading any pixels
            _npz_header(npz, "y", name)
            y = npz["y"]
            cn = None
            if "class_names" in keys:
                _npz_header(npz, "class_names", name)
                cn = npz["class_names"]
            x = npz["x"] if with_x else None
    except ValueError as exc:
        if str(exc).startswith(field):
            raise
        raise ValueError(f"{field}: cannot read {name} ({exc}) - save plain numeric arrays with np.savez") from None
    except Exception as exc:  # noqa: BLE001 - a damaged zip raises a zoo of types (BadZipFile, EOFError, NotImplementedError...)
        raise ValueError(f"{field}: cannot read {name} ({type(exc).__name__}: {exc}) - the archive is damaged; "
                         "save it again") from None
    codes, names = _npz_labels(y, cn, n, name, field)
    if x is not None:
        x = scale_pixels(x, name, field)
        x = np.ascontiguousarray(x[:, None] if x.ndim == 3 else x.transpose(perm) if perm else x)
    return chw, names, (x, codes)


def _npz_layout(xshape: tuple[int, ...], xdtype: np.dtype, name: str, field: str):
    """(N, (C, H, W), axes to move channels first or None) from x's header."""
    if xdtype.kind not in "biuf":
        raise ValueError(f"{field}: {name}: x holds {xdtype} values - images must be numbers")
    if len(xshape) == 3:
        n, chw, perm = xshape[0], (1,) + tuple(xshape[1:]), None
    elif len(xshape) == 4 and xshape[3] in (1, 3) and xshape[1] not in (1, 3):
        n, chw, perm = xshape[0], (xshape[3], xshape[1], xshape[2]), (0, 3, 1, 2)  # channels last
    elif len(xshape) == 4 and xshape[1] in (1, 3):
        n, chw, perm = xshape[0], tuple(xshape[1:]), None
    else:
        raise ValueError(f"{field}: {name}: x has shape {tuple(xshape)} - expected (N, H, W), (N, C, H, W) or "
                         "(N, H, W, C) with C = 1 or 3")
    if min(chw) == 0 or n == 0:
        raise ValueError(f"{field}: {name}: x has shape {tuple(xshape)} - it holds no pixels")
    if n * math.prod(chw) * 4 > MAX_BYTES:
        raise ValueError(f"{field}: {name}: x needs {n * math.prod(chw) * 4 / 1e9:.1f} GB as float32 - use fewer images")
    return n, chw, perm


def _npz_header(npz, key: str, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the member's .npy header, without reading its data."""
    with npz.zip.open(key + ".npy") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"{key} uses .npy format {version}")
    if dtype.hasobject:
        raise ValueError(f"dataset.params.path: {name}: '{key}' is an object array, which could run code when "
                         "loaded - it is refused; save plain numeric or text arrays")
    if math.prod(shape) * dtype.itemsize > MAX_BYTES * 2:
        raise ValueError(f"dataset.params.path: {name}: '{key}' is too large ({shape})")
    return shape, dtype


def _npz_labels(y: np.ndarray, cn: np.ndarray | None, n: int, name: str, field: str) -> tuple[np.ndarray, list[str]]:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{field}: {name}: y has shape {y.shape} but x holds {n} images - y needs one label per image")
    if cn is not None and (cn.ndim != 1 or cn.dtype.kind not in "US"):
        raise ValueError(f"{field}: {name}: class_names must be a 1-D array of text")
    cn_list = [c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in cn] if cn is not None else None
    if y.dtype.kind in "US":
        labels = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in y.tolist()])
        found = sorted(set(labels.tolist()))
        names = cn_list if cn_list and set(found) <= set(cn_list) else found
        codes = np.array([names.index(v) for v in found], np.int64)[np.searchsorted(found, labels)]
    elif y.dtype.kind in "biuf":
        yf = y.astype(np.float64)
        if not np.isfinite(yf).all() or (yf != np.round(yf)).any() or (yf < 0).any():
            raise ValueError(f"{field}: {name}: y must hold whole numbers >= 0 (class indices) or text labels")
        yi = yf.astype(np.int64)
        if cn_list is not None:
            if yi.max() >= len(cn_list):
                raise ValueError(f"{field}: {name}: y has label {yi.max()} but class_names lists only {len(cn_list)} names")
            names, codes = cn_list, yi
        else:  # the distinct values in order; names keep the user's own numbers
            values = np.unique(yi)
            names, codes = [str(v) for v in values], np.searchsorted(values, yi).astype(np.int64)
    else:
        raise ValueError(f"{field}: {name}: y holds {y.dtype} values - use integer class indices or text labels")
    if len(names) < 2:
        raise ValueError(f"{field}: {name}: y has only one class - a classifier needs at least two")
    if len(names) > 1000:
        raise ValueError(f"{field}: {name}: y has {len(names)} classes - is it really the label array?")
    return codes, names
