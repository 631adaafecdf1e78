"""Image datasets: generated shapes, MNIST-style IDX files, a folder of images, a .npz archive.

numpy, plus Pillow for the pictures in an image folder (PNG, JPEG, BMP, GIF, TIFF, WebP,
PGM/PPM; imported when the first one is read). No torch, no Qt. ``describe`` reads headers
and folder listings only; ``load`` reads the pixels, scales them to 0..1 and standardises per
channel. Every problem with a file is a ValueError naming the field, the file and the fix.
"""
from __future__ import annotations

import functools
import io
import math
import os
import warnings
from typing import IO, Any

import numpy as np

from engine.datasets.base import (
    COMMON_PARAMS,
    MAX_BYTES,
    MAX_PIXELS,
    Data,
    DataInfo,
    DataParam,
    scale_pixels,
    split,
    standardise,
)
from engine.datasets.idx import idx_head, idx_load, idx_meta
from engine.datasets.npz import npz_read
from engine.datasets.shapes import SHAPE_NAMES, render_shapes
from engine.spec import DatasetSpec

IMAGE_KINDS = ("shapes", "idx", "image_folder", "npz")

IMAGE_PARAMS: dict[str, tuple[DataParam, ...]] = {
    "shapes": (
        DataParam("n_per_class", "int", 200, "Images generated per class", 10, 5000),
        DataParam("size", "int", 28, "Width and height of each image in pixels", 16, 64),
        DataParam("noise", "float", 0.1, "Gaussian pixel noise (pixels run 0..1)", 0.0, 1.0),
    ) + COMMON_PARAMS,
    "idx": (
        DataParam("images_path", "path", "", "IDX image file, e.g. train-images-idx3-ubyte or .gz"),
        DataParam("labels_path", "path", "", "IDX label file, e.g. train-labels-idx1-ubyte or .gz"),
        DataParam("max_samples", "int", 10000, "Use at most this many images, picked at random (0 = all)", 0, 10_000_000),
    ) + COMMON_PARAMS,
    "image_folder": (
        DataParam("path", "path", "", "Folder holding one subfolder of images per class"),
        DataParam("size", "int", 28, "Images are resized to size x size pixels", 8, 128),
        DataParam("color", "str", "gray", "gray (1 channel) or rgb (3 channels)"),
        DataParam("max_per_class", "int", 1000, "Use at most this many images per class", 1, 100000),
    ) + COMMON_PARAMS,
    "npz": (DataParam("path", "path", "", "NumPy .npz archive with arrays x (images) and y (labels)"),) + COMMON_PARAMS,
}
IMAGE_HELP = {
    "shapes": "Generated grayscale pictures of circles, squares, triangles, crosses and lines.",
    "idx": "MNIST / Fashion-MNIST style IDX files (images + labels, raw or .gz).",
    "image_folder": "Your own pictures: one subfolder per class (PNG, JPEG, BMP, GIF, TIFF, WebP, PGM/PPM, .npy).",
    "npz": "A NumPy .npz with x: images (N,H,W), (N,C,H,W) or (N,H,W,C) and y: labels (N,).",
}
# Hints for editors: which path params name a folder, and which text params take fixed values.
FOLDER_PARAMS = {("image_folder", "path")}
CHOICES = {("image_folder", "color"): ("gray", "rgb")}

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm", ".npy")


# ---- public API ------------------------------------------------------------------------------

def _os_errors_as_value_errors(fn):
    """Permissions, vanished files, unreadable disks: a clear ValueError, never an OSError traceback."""
    @functools.wraps(fn)
    def wrapper(ds: DatasetSpec, *args):
        try:
            return fn(ds, *args)
        except OSError as exc:
            what = os.path.basename(str(exc.filename or "")) or "a file"
            raise ValueError(f"dataset: cannot read {what} ({exc.strerror or exc}) - check that it exists "
                             "and you may read it") from None
    return wrapper


@_os_errors_as_value_errors
def describe(ds: DatasetSpec) -> DataInfo:
    """Input shape (C, H, W) and classes, from params, headers or a folder listing only."""
    p = resolve_params(ds)
    k = ds.kind
    if k == "shapes":
        return DataInfo(k, (1, p["size"], p["size"]), len(SHAPE_NAMES), list(SHAPE_NAMES))
    if k == "idx":
        (_, h, w), names, _ = idx_meta(p)
        return DataInfo(k, (1, h, w), len(names), names)
    if k == "image_folder":
        names, _ = _list_folder(p)
        return DataInfo(k, (_channels(p), p["size"], p["size"]), len(names), names)
    shape, names, _ = npz_read(p["path"], with_x=False)
    return DataInfo(k, shape, len(names), names)


class LoadCancelled(Exception):
    """The caller's progress callback asked to stop reading."""


PROGRESS_EVERY = 256  # images between two progress reports


@_os_errors_as_value_errors
def load(ds: DatasetSpec, progress=None) -> Data:
    """Make or read the images, split them stratified, standardise per channel (training set).

    ``progress(done, total)`` is called while a folder is read; returning False stops the
    reading with LoadCancelled."""
    p = resolve_params(ds)
    k = ds.kind
    rng = np.random.default_rng(p["seed"])
    if k == "shapes":
        x, y = render_shapes(p["n_per_class"], p["size"], p["noise"], rng)
        names = list(SHAPE_NAMES)
    elif k == "idx":
        x, y, names = idx_load(p, rng)
    elif k == "image_folder":
        x, y, names = _folder_load(p, rng, progress)
    else:
        _, names, (x, y) = npz_read(p["path"], with_x=True)
    info = DataInfo(k, tuple(x.shape[1:]), len(names), names)
    xt, yt, xv, yv = split(x, y, p["val_fraction"], rng)
    if len(yt) == 0 or len(yv) == 0:
        raise ValueError(f"dataset: only {len(y)} images - need at least two in some class to fill both "
                         "training and validation; add images")
    return standardise(info, xt, yt, xv, yv)


@_os_errors_as_value_errors
def sample(ds: DatasetSpec, n: int = 64) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """About ``n`` images (N, C, H, W) in 0..1, their labels, the class names and how many images
    the whole set holds - reading only those images, so a preview of a big folder stays cheap."""
    p = resolve_params(ds)
    k = ds.kind
    rng = np.random.default_rng(p["seed"])
    if k == "shapes":
        per_class = max(1, math.ceil(n / len(SHAPE_NAMES)))
        x, y = render_shapes(per_class, p["size"], p["noise"], rng)
        return x, y, list(SHAPE_NAMES), p["n_per_class"] * len(SHAPE_NAMES)
    if k == "idx":
        (total, h, w), names, labels = idx_meta(p)
        m = min(n, total)
        x = idx_head(p, m)
        return (x.astype(np.float32) / 255.0)[:, None], labels[:m].astype(np.int64), names, int(total)
    if k == "image_folder":
        names, files = _list_folder(p)
        total = sum(min(len(f), p["max_per_class"]) for f in files)
        x, y, names = _folder_load({**p, "max_per_class": max(1, math.ceil(n / len(names)))}, rng)
        return x, y, names, total
    _, names, (x, y) = npz_read(p["path"], with_x=True)  # an archive member is read whole
    return x[:n], y[:n], names, len(y)


def resolve_params(ds: DatasetSpec) -> dict[str, Any]:
    """An image kind's params with defaults filled in; ValueError names the first bad field and the fix."""
    schema = IMAGE_PARAMS[ds.kind]
    out = {p.name: p.default for p in schema}
    for k, v in ds.params.items():
        par = next((p for p in schema if p.name == k), None)
        if par is None:
            raise ValueError(f"dataset.params.{k}: not a parameter of {ds.kind} - remove it")
        if par.type in ("int", "float"):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"dataset.params.{k}: must be a number, got {v!r}")
            if par.type == "int" and not float(v).is_integer():
                raise ValueError(f"dataset.params.{k}: must be a whole number, got {v}")
            if v < par.min or v > par.max:
                raise ValueError(f"dataset.params.{k}: {v} is outside {par.min:g}..{par.max:g}")
            v = int(v) if par.type == "int" else float(v)
        elif not isinstance(v, str):
            raise ValueError(f"dataset.params.{k}: must be text, got {v!r}")
        choices = CHOICES.get((ds.kind, k))
        if choices and v not in choices:
            raise ValueError(f"dataset.params.{k}: {v!r} is not one of {', '.join(choices)}")
        out[k] = v
    return out


# ---- image folder ----------------------------------------------------------------------------

def _channels(p: dict) -> int:
    return 3 if p["color"] == "rgb" else 1


def _list_folder(p: dict) -> tuple[list[str], list[list[str]]]:
    """Class names (sorted subfolder names) and each class's image files; the folder is only listed."""
    root = p["path"]
    if not root:
        raise ValueError("dataset.params.path: choose a folder with one subfolder of images per class")
    if not os.path.isdir(root):
        raise ValueError(f"dataset.params.path: no folder at {root} - choose a folder with one subfolder per class")
    base = os.path.basename(os.path.normpath(root))
    names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not names:
        raise ValueError(f"dataset.params.path: {base} has no subfolders - put each class's images in its own "
                         "subfolder (e.g. cats/, dogs/)")
    if len(names) < 2:
        raise ValueError(f"dataset.params.path: {base} has only one class folder ({names[0]}) - add a subfolder per class")
    exts = IMAGE_EXTS
    files = []
    for cname in names:
        entries = [e for e in os.scandir(os.path.join(root, cname)) if e.is_file() and not e.name.startswith(".")]
        ok = sorted(e.path for e in entries if os.path.splitext(e.name)[1].lower() in exts)
        if not ok:
            others = sorted({os.path.splitext(e.name)[1].lower() or "(no extension)" for e in entries})
            seen = f" (found only {', '.join(others)})" if others else ""
            raise ValueError(f"dataset.params.path: class folder {cname} has no images{seen} - add "
                             f"{', '.join(exts)} files")
        files.append(ok)
    c, s = _channels(p), p["size"]
    total = sum(min(len(f), p["max_per_class"]) for f in files)
    if total * c * s * s * 4 > MAX_BYTES:
        raise ValueError(f"dataset.params.max_per_class: {total} images of {c}x{s}x{s} need "
                         f"{total * c * s * s * 4 / 1e9:.1f} GB - lower max_per_class or size")
    return names, files


def _folder_load(p: dict, rng: np.random.Generator, progress=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names, files = _list_folder(p)
    c, s = _channels(p), p["size"]
    chosen = []
    for k, fl in enumerate(files):
        if len(fl) > p["max_per_class"]:
            fl = [fl[i] for i in np.sort(rng.choice(len(fl), p["max_per_class"], replace=False))]
        chosen += [(f, k) for f in fl]
    x = np.empty((len(chosen), c, s, s), np.float32)  # bounded: _list_folder refused more than MAX_BYTES
    for i, (f, k) in enumerate(chosen):
        if progress is not None and i % PROGRESS_EVERY == 0 and progress(i, len(chosen)) is False:
            raise LoadCancelled(f"stopped after reading {i} of {len(chosen)} images")
        x[i] = resize(_to_channels(read_image(f, f"{names[k]}/{os.path.basename(f)}"), c), s)
    if progress is not None:
        progress(len(chosen), len(chosen))
    return x, np.array([k for _, k in chosen], np.int64), names


def _to_channels(img: np.ndarray, c: int) -> np.ndarray:
    if img.shape[2] == c:
        return img
    if c == 1:  # ITU-R 601 luma, as most tools convert colour to gray
        return img @ np.array([[0.299], [0.587], [0.114]], np.float32)
    return np.repeat(img, 3, axis=2)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) -> (C, size, size) by separable bilinear filtering, widened when shrinking
    so every source pixel counts (the same filter as Pillow's antialiased BILINEAR)."""
    if img.shape[:2] == (size, size):
        return np.ascontiguousarray(img.transpose(2, 0, 1), np.float32)
    rows = np.tensordot(_resize_weights(img.shape[0], size), img, axes=(1, 0))  # (size, W, C)
    out = np.tensordot(rows, _resize_weights(img.shape[1], size), axes=(1, 1))  # (size, C, size)
    return np.ascontiguousarray(out.transpose(1, 0, 2), np.float32)


@functools.lru_cache(maxsize=64)  # a folder's images mostly share a few sizes
def _resize_weights(n_in: int, n_out: int) -> np.ndarray:
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale - 0.5  # output pixel centres in input pixel coordinates
    w = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in)[None, :] - centre[:, None]) / support)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


# ---- reading one picture (Pillow) -------------------------------------------------------------

class _TooLarge(Exception):
    pass


def read_image(path: str, name: str | None = None) -> np.ndarray:
    """One image file as float32 (H, W, C), C 1 (gray) or 3 (colour), values 0..1; alpha is dropped.

    ``.npy`` files are read by numpy (never unpickled); everything else by Pillow.
    ``name`` is how errors refer to the file (default: its base name).
    """
    name = name or os.path.basename(path)
    if os.path.splitext(path)[1].lower() == ".npy":
        return _read_npy_image(path, name)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; opened apart so a permission error reads as one
    except OSError as exc:
        raise ValueError(f"dataset.params.path: cannot read {name} ({exc.strerror or exc})") from None
    with fh:
        return _decode(fh, name)


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """An image file's bytes (any format Pillow reads) as read_image returns it."""
    return _decode(io.BytesIO(data), name)


def _decode(fh: IO[bytes], name: str) -> np.ndarray:
    from PIL import Image  # here, not at the top: describe() and the editor never need Pillow

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fh) as im:
                if im.width * im.height > MAX_PIXELS:  # checked on the header, before any pixel is decoded
                    raise _TooLarge(f"{im.width}x{im.height}")
                return _pixels(im)
    except (_TooLarge, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"dataset.params.path: {name} is too large ({exc}) - shrink it first") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files; all mean "cannot read"
        raise ValueError(f"dataset.params.path: {name} is damaged or not an image ({type(exc).__name__}: {exc}) - "
                         "replace or remove it") from None


def _pixels(im) -> np.ndarray:
    """(H, W, 1) or (H, W, 3) float32 in 0..1 from an open Pillow image."""
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit gray: Pillow's convert("L") would clip
        a = np.asarray(im, dtype=np.float32)
        # Pillow keeps 16-bit PNG/TIFF as I;16 and scales 16-bit PGM to 0..65535 in mode I
        sixteen = im.mode.startswith("I;16") or (im.mode == "I" and im.format in ("PNG", "PPM")) or a.max() > 255
        return np.clip(a / (65535.0 if sixteen else 255.0), 0, 1)[:, :, None]
    gray = im.mode in ("1", "L", "LA", "La") or (im.mode in ("P", "PA") and _gray_palette(im))
    a = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0
    return a[:, :, None] if a.ndim == 2 else a


def _gray_palette(im) -> bool:
    pal = np.asarray(im.getpalette() or [0, 0, 0], np.int32).reshape(-1, 3)
    return bool((pal == pal[:, :1]).all())


def _read_npy_image(path: str, name: str) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - a damaged header can even raise tokenize errors
        raise ValueError(f"dataset.params.path: cannot read {name} as a plain .npy array ({exc}) - "
                         "save images with np.save and no object dtype") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
        raise ValueError(f"dataset.params.path: {name} does not hold a numeric image array")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or min(a.shape[:2]) == 0:
        raise ValueError(f"dataset.params.path: {name} has shape {a.shape} - an image is (H, W) or (H, W, C) with C 1, 3 or 4")
    a = scale_pixels(a, name, "dataset.params.path")
    return a[:, :, :3] if a.shape[2] == 4 else a
