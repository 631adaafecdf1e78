"""MNIST-style IDX files (images + labels, raw or gzip), read with every size checked first."""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

from engine.datasets.base import MAX_BYTES, MAX_PIXELS, check_file

FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}


def _idx_header(path: str, field: str, want_ndim: int) -> tuple[tuple[int, ...], bool, int]:
    """(dims, gzipped, header length) after checking the magic number and, for raw files, the size."""
    name = check_file(path, field, "an IDX file")
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
    if want_ndim == 3 and (min(dims[1:]) == 0 or dims[1] * dims[2] > MAX_PIXELS):
        raise ValueError(f"dataset.params.{field}: {name} says its images are {dims[1]}x{dims[2]} pixels - not usable")
    if math.prod(dims) * 4 > MAX_BYTES:  # as float32 in memory
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


def idx_meta(p: dict) -> tuple[tuple[int, ...], list[str], np.ndarray]:
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


def idx_load(p: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    _, names, labels = idx_meta(p)
    dims, gz, hlen = _idx_header(p["images_path"], "images_path", 3)
    pixels = _idx_body(p["images_path"], "images_path", dims, gz, hlen)
    idx = np.arange(dims[0])
    if 0 < p["max_samples"] < dims[0]:
        idx = np.sort(rng.choice(dims[0], p["max_samples"], replace=False))
    x = (pixels[idx].astype(np.float32) / 255.0)[:, None]  # (N, 1, H, W)
    return x, labels[idx].astype(np.int64), names


def idx_head(p: dict, n: int) -> np.ndarray:
    """The first ``n`` images (n, H, W) uint8, reading no more of the file than they need."""
    (total, h, w), gz, hlen = _idx_header(p["images_path"], "images_path", 3)
    n = min(n, total)
    data = _read_bytes(p["images_path"], hlen + n * h * w, gz, "images_path")[hlen:]
    if len(data) != n * h * w:
        raise ValueError(f"dataset.params.images_path: {os.path.basename(p['images_path'])} ends early - download it again")
    return np.frombuffer(data, np.uint8).reshape(n, h, w)


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
