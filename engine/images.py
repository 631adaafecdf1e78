"""Image datasets: generated shapes, MNIST-style IDX files, a folder of images, a .npz archive.

numpy only (no torch, no Qt). PNG, PGM/PPM and .npy images are read by the small decoders here,
so the engine needs no imaging library; when Pillow is importable it reads the other formats
(JPEG, BMP, GIF, TIFF, WebP, interlaced PNG). ``describe`` reads headers and folder listings
only; ``load`` reads the pixels, scales them to 0..1 and standardises per channel.
Every problem with a file is a ValueError naming the field, the file and the fix.
"""
from __future__ import annotations

import functools
import gzip
import math
import os
import struct
import zipfile
import zlib
from typing import Any

import numpy as np

from engine.datasets import _COMMON, Data, DataInfo, DataParam, _split, standardise
from engine.spec import DatasetSpec

IMAGE_KINDS = ("shapes", "idx", "image_folder", "npz")
SHAPE_NAMES = ["circle", "square", "triangle", "cross", "line"]
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

IMAGE_PARAMS: dict[str, tuple[DataParam, ...]] = {
    "shapes": (
        DataParam("n_per_class", "int", 200, "Images generated per class", 10, 5000),
        DataParam("size", "int", 28, "Width and height of each image in pixels", 16, 64),
        DataParam("noise", "float", 0.1, "Gaussian pixel noise (pixels run 0..1)", 0.0, 1.0),
    ) + _COMMON,
    "idx": (
        DataParam("images_path", "path", "", "IDX image file, e.g. train-images-idx3-ubyte or .gz"),
        DataParam("labels_path", "path", "", "IDX label file, e.g. train-labels-idx1-ubyte or .gz"),
        DataParam("max_samples", "int", 10000, "Use at most this many images, picked at random (0 = all)", 0, 10_000_000),
    ) + _COMMON,
    "image_folder": (
        DataParam("path", "path", "", "Folder holding one subfolder of images per class"),
        DataParam("size", "int", 28, "Images are resized to size x size pixels", 8, 128),
        DataParam("color", "str", "gray", "gray (1 channel) or rgb (3 channels)"),
        DataParam("max_per_class", "int", 1000, "Use at most this many images per class", 1, 100000),
    ) + _COMMON,
    "npz": (DataParam("path", "path", "", "NumPy .npz archive with arrays x (images) and y (labels)"),) + _COMMON,
}
IMAGE_HELP = {
    "shapes": "Generated grayscale pictures of circles, squares, triangles, crosses and lines.",
    "idx": "MNIST / Fashion-MNIST style IDX files (images + labels, raw or .gz).",
    "image_folder": "Your own pictures: one subfolder per class (PNG, PGM/PPM, .npy; JPEG etc. with Pillow).",
    "npz": "A NumPy .npz with x: images (N,H,W), (N,C,H,W) or (N,H,W,C) and y: labels (N,).",
}
# Hints for editors: which path params name a folder, and which text params take fixed values.
FOLDER_PARAMS = {("image_folder", "path")}
CHOICES = {("image_folder", "color"): ("gray", "rgb")}

_MAX_PIXELS = 40_000_000  # one image; larger ones are refused before decoding (decompression bombs)
_MAX_BYTES = 2**31  # float32 dataset in memory
_BUILTIN_EXTS = (".png", ".pgm", ".ppm", ".pnm", ".npy")
_PIL_EXTS = (".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


# ---- public API ------------------------------------------------------------------------------

def _os_errors_as_value_errors(fn):
    """Permissions, vanished files, unreadable disks: a clear ValueError, never an OSError traceback."""
    @functools.wraps(fn)
    def wrapper(ds: DatasetSpec):
        try:
            return fn(ds)
        except OSError as exc:
            what = os.path.basename(str(exc.filename or "")) or "a file"
            raise ValueError(f"dataset: cannot read {what} ({exc.strerror or exc}) - check that it exists "
                             "and you may read it") from None
    return wrapper


@_os_errors_as_value_errors
def describe(ds: DatasetSpec) -> DataInfo:
    """Input shape (C, H, W) and classes, from params, headers or a folder listing only."""
    p = _resolve(ds)
    k = ds.kind
    if k == "shapes":
        return DataInfo(k, (1, p["size"], p["size"]), len(SHAPE_NAMES), list(SHAPE_NAMES))
    if k == "idx":
        (_, h, w), names, _ = _idx_meta(p)
        return DataInfo(k, (1, h, w), len(names), names)
    if k == "image_folder":
        names, _ = _list_folder(p)
        return DataInfo(k, (_channels(p), p["size"], p["size"]), len(names), names)
    shape, names, _ = _npz_read(p["path"], with_x=False)
    return DataInfo(k, shape, len(names), names)


@_os_errors_as_value_errors
def load(ds: DatasetSpec) -> Data:
    """Make or read the images, split them stratified, standardise per channel (training set)."""
    p = _resolve(ds)
    k = ds.kind
    rng = np.random.default_rng(p["seed"])
    if k == "shapes":
        x, y = render_shapes(p["n_per_class"], p["size"], p["noise"], rng)
        names = list(SHAPE_NAMES)
    elif k == "idx":
        x, y, names = _idx_load(p, rng)
    elif k == "image_folder":
        x, y, names = _folder_load(p, rng)
    else:
        _, names, (x, y) = _npz_read(p["path"], with_x=True)
    info = DataInfo(k, tuple(x.shape[1:]), len(names), names)
    xt, yt, xv, yv = _split(x, y, p["val_fraction"], rng)
    if len(yt) == 0 or len(yv) == 0:
        raise ValueError(f"dataset: only {len(y)} images - need at least two in some class to fill both "
                         "training and validation; add images")
    return standardise(info, xt, yt, xv, yv)


def _resolve(ds: DatasetSpec) -> dict[str, Any]:
    """Params with defaults filled in; ValueError names the bad field (as datasets.resolve_params)."""
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


# ---- shapes ----------------------------------------------------------------------------------

def render_shapes(n_per_class: int, size: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x (N, 1, size, size) float32 in 0..1, y (N,) int64), classes in SHAPE_NAMES order.

    Each shape is a signed distance field in pixel units, turned into anti-aliased coverage
    (a one-pixel ramp at the edge), so thin strokes stay visible at any position and angle.
    """
    n = n_per_class * len(SHAPE_NAMES)
    y = np.repeat(np.arange(len(SHAPE_NAMES), dtype=np.int64), n_per_class)
    s = float(size)
    radius = rng.uniform(0.22, 0.42, n) * s  # every shape fits a circle of this radius
    centre = rng.uniform(-1, 1, (n, 2)) * (s / 2 - radius - 1)[:, None]
    angle = rng.uniform(0, 2 * np.pi, n)
    thick = rng.uniform(1.0, 2.6, n) * s / 28
    filled = rng.random(n) < 0.5  # circles, squares, triangles only; crosses and lines are strokes
    fg, bg = rng.uniform(0.65, 1.0, n), rng.uniform(0.0, 0.15, n)
    grid = np.arange(size, dtype=np.float32) + 0.5 - s / 2
    col = lambda v: np.asarray(v, np.float32)[:, None, None]  # noqa: E731  (n, 1, 1) for broadcasting
    cx, cy, cos, sin, r, t = map(col, (centre[:, 0], centre[:, 1], np.cos(angle), np.sin(angle), radius, thick))
    lo, span = col(bg), col(fg - bg)
    outline = (~filled & (y < 3))[:, None, None]  # closed shapes drawn as a band around their edge
    x = np.empty((n, 1, size, size), np.float32)
    step = max(1, 2_000_000 // (size * size))  # bounded memory per chunk
    for a in range(0, n, step):
        c = slice(a, min(n, a + step))
        gx, gy = grid[None, None, :] - cx[c], grid[None, :, None] - cy[c]
        u, v = cos[c] * gx + sin[c] * gy, cos[c] * gy - sin[c] * gx  # (m, S, S) in the shape's own frame
        d = np.empty_like(u)
        for k, sdf in enumerate((_sdf_circle, _sdf_square, _sdf_triangle, _sdf_cross, _sdf_line)):
            m = y[c] == k
            if m.any():
                d[m] = sdf(u[m], v[m], r[c][m], t[c][m])
        d = np.where(outline[c], np.abs(d) - t[c] / 2, d)
        cover = np.clip(0.5 - d, 0, 1)  # signed distance -> anti-aliased coverage
        img = lo[c] + span[c] * cover + rng.standard_normal(cover.shape, dtype=np.float32) * noise
        x[c, 0] = np.clip(img, 0, 1)
    return x, y


def _sdf_circle(u, v, r, t):
    return np.hypot(u, v) - 0.8 * r


def _sdf_square(u, v, r, t):
    a = r / math.sqrt(2)  # half side; the corners touch the bounding circle
    qx, qy = np.abs(u) - a, np.abs(v) - a
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)


def _sdf_triangle(u, v, r, t):
    # equilateral triangle with circumradius r (Inigo Quilez's exact distance)
    k, h = math.sqrt(3), r * math.sqrt(3) / 2  # h = half the side
    px, py = np.abs(u) - h, v + h / k
    flip = px + k * py > 0
    px, py = np.where(flip, (px - k * py) / 2, px), np.where(flip, (-k * px - py) / 2, py)
    px = px - np.clip(px, -2 * h, 0)
    return -np.hypot(px, py) * np.sign(py)


def _segment(u, v, half, t):
    return np.hypot(np.maximum(np.abs(u) - half, 0), v) - t / 2


def _sdf_line(u, v, r, t):
    return _segment(u, v, r, t)


def _sdf_cross(u, v, r, t):
    return np.minimum(_segment(u, v, 0.9 * r, t), _segment(v, u, 0.9 * r, t))


# ---- IDX (MNIST) -----------------------------------------------------------------------------

_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}


def _idx_header(path: str, field: str, want_ndim: int) -> tuple[tuple[int, ...], bool, int]:
    """(dims, gzipped, header length) after checking the magic number and, for raw files, the size."""
    name = _check_file(path, field, "an IDX file")
    gz = _is_gzip(path)
    head = _read_bytes(path, 4 + 4 * 3, gz, field)
    what = "images" if want_ndim == 3 else "labels"
    if len(head) < 4 or head[:2] != b"\0\0":
        raise ValueError(f"dataset.params.{field}: {name} is not an IDX file (bad magic number) - choose the {what} file")
    code, ndim = head[2], head[3]
    if code != 0x08:
        kind = _IDX_TYPES.get(code, f"type 0x{code:02x}")
        raise ValueError(f"dataset.params.{field}: {name} stores {kind} values - only unsigned-byte IDX files "
                         "(MNIST, Fashion-MNIST) are supported")
    if ndim != want_ndim:
        hint = (" - it looks like a labels file: did you swap images_path and labels_path?" if ndim == 1
                else " - it looks like an images file: did you swap images_path and labels_path?" if ndim == 3
                else "")
        raise ValueError(f"dataset.params.{field}: {name} has {ndim} dimensions, an IDX {what} file has {want_ndim}{hint}")
    hlen = 4 + 4 * ndim
    if len(head) < hlen:
        raise ValueError(f"dataset.params.{field}: {name} is truncated inside its header - download it again")
    dims = struct.unpack(f">{ndim}I", head[4:hlen])
    if want_ndim == 3 and (min(dims[1:]) == 0 or dims[1] * dims[2] > _MAX_PIXELS):
        raise ValueError(f"dataset.params.{field}: {name} says its images are {dims[1]}x{dims[2]} pixels - not usable")
    if math.prod(dims) * 4 > _MAX_BYTES:  # as float32 in memory
        raise ValueError(f"dataset.params.{field}: {name} says it holds {dims[0]} {what} of {dims[1:]} - "
                         f"{math.prod(dims) * 4 / 1e9:.1f} GB in memory is too much; split the file")
    if not gz:
        have, need = os.path.getsize(path) - hlen, math.prod(dims)
        if have != need:
            raise ValueError(f"dataset.params.{field}: {name} header promises {dims[0]} {what} ({need} bytes) but the file "
                             f"holds {have} - it is {'truncated' if have < need else 'longer than its header says'}; "
                             "download it again")
    return dims, gz, hlen


def _idx_body(path: str, field: str, dims: tuple[int, ...], gz: bool, hlen: int) -> np.ndarray:
    name, need = os.path.basename(path), math.prod(dims)
    data = _read_bytes(path, hlen + need + 1, gz, field)[hlen:]  # +1: notice extra data without reading a bomb
    if len(data) != need:
        raise ValueError(f"dataset.params.{field}: {name} should hold {need} bytes after its header but has "
                         f"{len(data)}{'' if len(data) < need else ' or more'} - download it again")
    return np.frombuffer(data, np.uint8).reshape(dims)


def _idx_meta(p: dict) -> tuple[tuple[int, ...], list[str], np.ndarray]:
    """Image dims, class names and labels (the label file is small, so describe reads it)."""
    idims, _, _ = _idx_header(p["images_path"], "images_path", 3)
    ldims, lgz, lhlen = _idx_header(p["labels_path"], "labels_path", 1)
    if idims[0] != ldims[0]:
        raise ValueError(f"dataset.params.labels_path: {os.path.basename(p['labels_path'])} has {ldims[0]} labels but "
                         f"{os.path.basename(p['images_path'])} has {idims[0]} images - choose the matching pair of files")
    labels = _idx_body(p["labels_path"], "labels_path", ldims, lgz, lhlen)
    n = int(labels.max()) + 1 if len(labels) else 0
    if n < 2:
        raise ValueError(f"dataset.params.labels_path: {os.path.basename(p['labels_path'])} holds fewer than two classes")
    fashion = "fashion" in (p["images_path"] + p["labels_path"]).lower()
    names = list(FASHION_NAMES) if fashion and n == 10 else [str(i) for i in range(n)]
    return idims, names, labels


def _idx_load(p: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    _, names, labels = _idx_meta(p)
    dims, gz, hlen = _idx_header(p["images_path"], "images_path", 3)
    pixels = _idx_body(p["images_path"], "images_path", dims, gz, hlen)
    idx = np.arange(dims[0])
    if 0 < p["max_samples"] < dims[0]:
        idx = np.sort(rng.choice(dims[0], p["max_samples"], replace=False))
    x = (pixels[idx].astype(np.float32) / 255.0)[:, None]  # (N, 1, H, W)
    return x, labels[idx].astype(np.int64), names


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _read_bytes(path: str, n: int, gz: bool, field: str) -> bytes:
    """At most n bytes of the (decompressed) file; corrupt gzip becomes a ValueError."""
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"dataset.params.{field}: cannot read {os.path.basename(path)} ({exc}) - "
                         "the file is damaged or not gzip; download it again") from None


def _check_file(path: str, field: str, what: str) -> str:
    if not path:
        raise ValueError(f"dataset.params.{field}: choose {what}")
    if not os.path.isfile(path):
        raise ValueError(f"dataset.params.{field}: no file at {path} - choose {what}")
    return os.path.basename(path)


# ---- image folder ----------------------------------------------------------------------------

def _channels(p: dict) -> int:
    return 3 if p["color"] == "rgb" else 1


def _readable_exts() -> tuple[str, ...]:
    return _BUILTIN_EXTS + (_PIL_EXTS if _pil() is not None else ())


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
    exts = _readable_exts()
    files = []
    for cname in names:
        entries = [e for e in os.scandir(os.path.join(root, cname)) if e.is_file() and not e.name.startswith(".")]
        ok = sorted(e.path for e in entries if os.path.splitext(e.name)[1].lower() in exts)
        if not ok:
            others = sorted({os.path.splitext(e.name)[1].lower() or "(no extension)" for e in entries})
            seen = f" (found only {', '.join(others)})" if others else ""
            need = "" if _pil() is not None else "; JPEG and other formats need Pillow, or convert them to PNG"
            raise ValueError(f"dataset.params.path: class folder {cname} has no images{seen} - add "
                             f"{', '.join(exts)} files{need}")
        files.append(ok)
    c, s = _channels(p), p["size"]
    total = sum(min(len(f), p["max_per_class"]) for f in files)
    if total * c * s * s * 4 > _MAX_BYTES:
        raise ValueError(f"dataset.params.max_per_class: {total} images of {c}x{s}x{s} need "
                         f"{total * c * s * s * 4 / 1e9:.1f} GB - lower max_per_class or size")
    return names, files


def _folder_load(p: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names, files = _list_folder(p)
    c, s = _channels(p), p["size"]
    chosen = []
    for k, fl in enumerate(files):
        if len(fl) > p["max_per_class"]:
            fl = [fl[i] for i in np.sort(rng.choice(len(fl), p["max_per_class"], replace=False))]
        chosen += [(f, k) for f in fl]
    x = np.empty((len(chosen), c, s, s), np.float32)
    for i, (f, k) in enumerate(chosen):
        x[i] = resize(_to_channels(read_image(f, f"{names[k]}/{os.path.basename(f)}"), c), s)
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


class _Unsupported(ValueError):
    """A valid file our decoders don't handle; Pillow gets a try when installed."""


def read_image(path: str, name: str | None = None) -> np.ndarray:
    """One image file as float32 (H, W, C), C 1 (gray) or 3 (colour), values 0..1; alpha is dropped.
    ``name`` is how errors refer to the file (default: its base name)."""
    name = name or os.path.basename(path)
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            return _read_npy_image(path, name)
        with open(path, "rb") as fh:
            data = fh.read()
        if data.startswith(_PNG_SIG):
            return decode_png(data, name)
        if data[:2] in (b"P2", b"P3", b"P5", b"P6"):
            return decode_pnm(data, name)
        raise _Unsupported("not a PNG, PGM or PPM file")
    except _Unsupported as exc:
        pil = _pil()
        if pil is None:
            raise ValueError(f"dataset.params.path: {name}: {exc} - convert it to a non-interlaced PNG "
                             "(or install Pillow to read it)") from None
        return _read_with_pil(pil, path, name)
    except OSError as exc:
        raise ValueError(f"dataset.params.path: cannot read {name} ({exc.strerror or exc})") from None


def _pil():
    """Pillow's Image module if installed (it is optional), else None."""
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def _read_with_pil(pil, path: str, name: str) -> np.ndarray:
    try:
        with pil.open(path) as im:
            if im.width * im.height > _MAX_PIXELS:
                raise ValueError(f"{im.width}x{im.height} pixels is too large")
            if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit gray: Pillow's convert("L") clips
                a = np.asarray(im, dtype=np.float32)
                a = a / (65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0)
                return np.clip(a, 0, 1)[:, :, None]
            gray = im.mode in ("1", "L", "LA", "La") or (im.mode == "P" and _gray_palette(im))
            a = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files; all mean "cannot read"
        raise ValueError(f"dataset.params.path: cannot read image {name} ({exc}) - "
                         "replace or remove the file") from None
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
    a = _scale(a, name, "dataset.params.path")
    return a[:, :, :3] if a.shape[2] == 4 else a


def _scale(a: np.ndarray, name: str, field: str) -> np.ndarray:
    """float32: 8/16-bit integers to 0..1, other numbers as they are; NaN and inf refused."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    out = a.astype(np.float32)
    bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
    if bad:
        raise ValueError(f"{field}: {name} has {bad} NaN or infinite values (or numbers too large for float32) - "
                         "clean the data")
    return out


# ---- PNG / PNM decoders (pure numpy + zlib) ---------------------------------------------------

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def decode_png(data: bytes, name: str = "image.png") -> np.ndarray:
    """A non-interlaced PNG (gray, RGB, palette, with or without alpha; 1-16 bit) as (H, W, C)
    float32 in 0..1 with C 1 or 3. Damaged files raise ValueError naming ``name``."""
    bad = lambda why: ValueError(f"dataset.params.path: {name} is a damaged PNG ({why}) - replace or remove it")  # noqa: E731
    pos, ihdr, plte, idat = 8, None, None, []
    while True:
        if pos + 8 > len(data):
            if pos == len(data) and ihdr and idat:
                break  # a missing IEND is harmless when the data is complete
            raise bad("file ends before its IEND chunk")
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if pos + 12 + length > len(data):
            raise bad(f"chunk {ctype.decode('latin-1')!r} is cut short")
        if zlib.crc32(ctype + body) != struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]:
            raise bad(f"checksum error in chunk {ctype.decode('latin-1')!r}")
        pos += 12 + length
        if ctype == b"IHDR" and length == 13:
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"PLTE":
            plte = np.frombuffer(body[:len(body) // 3 * 3], np.uint8).reshape(-1, 3)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if ihdr is None:
        raise bad("no IHDR header")
    w, h, depth, ctype_, comp, filt, interlace = ihdr
    if ctype_ not in _PNG_DEPTHS or depth not in _PNG_DEPTHS[ctype_] or comp or filt or w == 0 or h == 0:
        raise bad(f"colour type {ctype_} with bit depth {depth} is not valid")
    if interlace:
        raise _Unsupported("interlaced PNG")
    if w * h > _MAX_PIXELS:
        raise ValueError(f"dataset.params.path: {name} is {w}x{h} pixels - too large; shrink it first")
    ch = _PNG_CHANNELS[ctype_]
    bpp = max(1, ch * depth // 8)  # bytes per complete pixel, as the filters count them
    stride = (w * ch * depth + 7) // 8
    try:
        raw = zlib.decompressobj().decompress(b"".join(idat), h * (stride + 1))  # bounded: no zip bomb
    except zlib.error as exc:
        raise bad(f"compressed data: {exc}") from None
    if len(raw) < h * (stride + 1):
        raise bad("image data is truncated")
    rows = _unfilter(np.frombuffer(raw, np.uint8).reshape(h, stride + 1), bpp, bad)
    if depth == 16:
        px = rows.view(">u2").reshape(h, w, ch).astype(np.float32) / 65535.0
    elif depth == 8:
        px = rows.reshape(h, w, ch).astype(np.float32)
    else:  # 1, 2 or 4 bits per sample, packed big-end first
        bits = np.unpackbits(rows, axis=1)[:, :w * depth].reshape(h, w, depth)
        px = (bits @ (1 << np.arange(depth - 1, -1, -1))).astype(np.float32)[:, :, None]
    if ctype_ == 3:
        if plte is None or px.max() >= len(plte):
            raise bad("palette missing or too short")
        px = plte[px[:, :, 0].astype(np.intp)].astype(np.float32) / 255.0
        return px[:, :, :1] if (plte == plte[:, :1]).all() else px
    if depth < 16:
        px /= float((1 << depth) - 1)
    return px[:, :, :1] if ch in (1, 2) else px[:, :, :3]


def _unfilter(rows: np.ndarray, bpp: int, bad) -> np.ndarray:
    """Undo PNG's per-row filters. None and Sub rows don't depend on the row above, so they are
    decoded all at once; Up is one vector add; Average and Paeth depend on the byte just decoded,
    so they run as a plain loop over the row."""
    n = rows.shape[1] - 1
    filters = rows[:, 0]
    if filters.max(initial=0) > 4:
        y = int(np.argmax(filters > 4))
        raise bad(f"unknown filter type {filters[y]} in row {y}")
    out = rows[:, 1:].copy()
    sub = filters == 1  # running sum per byte position within a pixel, mod 256 (uint8 wraps)
    out[sub] = np.cumsum(out[sub].reshape(-1, n // bpp, bpp), axis=1, dtype=np.uint8).reshape(-1, n)
    prev = np.zeros(n, np.uint8)
    for y, f in enumerate(filters.tolist()):
        if f == 2:
            out[y] += prev
        elif f >= 3:
            out[y] = np.frombuffer(_unfilter_row(out[y].tobytes(), prev.tobytes(), bpp, f == 4), np.uint8)
        prev = out[y]
    return out


def _unfilter_row(line: bytes, prev: bytes, bpp: int, paeth: bool) -> bytearray:
    cur = bytearray(line)
    for i in range(min(bpp, len(cur))):  # no left neighbour: both predictors reduce to the byte above
        cur[i] = (cur[i] + (prev[i] if paeth else prev[i] >> 1)) & 0xFF
    for i in range(bpp, len(cur)):
        a, b = cur[i - bpp], prev[i]
        if paeth:
            c = prev[i - bpp]
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
        else:
            pred = (a + b) >> 1
        cur[i] = (cur[i] + pred) & 0xFF
    return cur


def decode_pnm(data: bytes, name: str = "image.pgm") -> np.ndarray:
    """Netpbm P2/P5 (gray) and P3/P6 (colour), 8 or 16 bit, as (H, W, C) float32 in 0..1."""
    bad = lambda why: ValueError(f"dataset.params.path: {name} is a damaged PGM/PPM file ({why}) - replace or remove it")  # noqa: E731
    magic, fields, pos = data[:2], [], 2
    while len(fields) < 3:  # width, height, maxval; '#' starts a comment to end of line
        while pos < len(data) and (data[pos:pos + 1].isspace() or data[pos:pos + 1] == b"#"):
            if data[pos:pos + 1] == b"#":
                end = data.find(b"\n", pos)
                pos = len(data) if end < 0 else end
            pos += 1
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise bad("bad header")
        fields.append(int(data[start:pos]))
    w, h, maxval = fields
    if w == 0 or h == 0 or not 0 < maxval < 65536:
        raise bad(f"size {w}x{h}, maximum value {maxval}")
    if w * h > _MAX_PIXELS:
        raise ValueError(f"dataset.params.path: {name} is {w}x{h} pixels - too large; shrink it first")
    ch = 3 if magic in (b"P3", b"P6") else 1
    count = w * h * ch
    if magic in (b"P5", b"P6"):
        dtype = np.uint8 if maxval < 256 else np.dtype(">u2")
        body = data[pos + 1:pos + 1 + count * np.dtype(dtype).itemsize]  # one whitespace byte after maxval
        if len(body) < count * np.dtype(dtype).itemsize:
            raise bad("pixel data is truncated")
        px = np.frombuffer(body, dtype)
    else:
        try:
            px = np.array(data[pos:].split()[:count], dtype=np.int64)
        except ValueError:
            raise bad("non-numeric pixel value") from None
        if px.size < count:
            raise bad("pixel data is truncated")
    px = px.reshape(h, w, ch).astype(np.float32)
    if px.max() > maxval:
        raise bad(f"pixel values above the maximum {maxval}")
    return px / maxval


# ---- npz -------------------------------------------------------------------------------------

def _npz_read(path: str, with_x: bool):
    """((C, H, W), class names, (x float32 (N, C, H, W) or None, y int64 codes)).

    Always ``allow_pickle=False``: a .npz may come from anyone, and unpickling runs code.
    Without ``with_x`` only x's header is read, so describe stays cheap for big archives.
    """
    field = "dataset.params.path"
    name = _check_file(path, "path", "a .npz file")
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
        x = _scale(x, name, field)
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
    if n * math.prod(chw) * 4 > _MAX_BYTES:
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
    if math.prod(shape) * dtype.itemsize > _MAX_BYTES * 2:
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
