"""numpy <-> QImage helpers shared by the image views (samples, tiles, overlays)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect
from PySide6.QtGui import QImage

from widgets.paint.colormaps import finite_range
from widgets.paint.palette import NAN_RGB


def rgb_to_argb(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) floats in [0, 1] (NaN -> grey) -> uint32 0xFFRRGGBB."""
    a = np.asarray(rgb, dtype=np.float32)
    bad = ~np.isfinite(a).all(axis=-1)
    u8 = np.clip(np.rint(np.nan_to_num(a) * 255.0), 0, 255).astype(np.uint32)
    if bad.any():
        u8[bad] = np.asarray(NAN_RGB, np.uint32)
    return (0xFF000000 | (u8[..., 0] << 16) | (u8[..., 1] << 8) | u8[..., 2]).astype(np.uint32)


def image_to_rgb01(image: np.ndarray) -> np.ndarray:
    """A (C, H, W) or (H, W) sample as (H, W, 3) floats in [0, 1] for display.

    Samples are usually standardised, so the whole image is stretched min..max (one range for all
    channels, which keeps RGB hues). 1 channel is grey, 3 are RGB, any other count shows the mean.
    """
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"an image must be (C, H, W) or (H, W), got shape {a.shape}")
    if a.shape[0] != 3:
        a = a.mean(axis=0, keepdims=True) if a.shape[0] else np.zeros((1,) + a.shape[1:], np.float32)
    lo, hi = finite_range(a)
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    rgb = np.moveaxis(a, 0, -1)
    return np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb


def images_to_argb(images: np.ndarray) -> np.ndarray:
    """(N, h, w) uint32 ARGB of a batch (N, C, H, W), each image stretched to its own min..max (see image_to_rgb01)."""
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {a.shape}")
    if a.shape[1] != 3:
        a = a.mean(axis=1, keepdims=True) if a.shape[1] else np.zeros((len(a), 1) + a.shape[2:], np.float32)
    flat = a.reshape(len(a), -1)
    ok = np.isfinite(flat)
    lo = np.where(ok, flat, np.inf).min(axis=1) if flat.shape[1] else np.zeros(len(a), np.float32)
    hi = np.where(ok, flat, -np.inf).max(axis=1) if flat.shape[1] else np.zeros(len(a), np.float32)
    lo, hi = np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 1.0)
    span = np.where(hi > lo, hi - lo, np.inf).astype(np.float32)  # a flat image shows black
    a = (a - lo[:, None, None, None].astype(np.float32)) / span[:, None, None, None]
    rgb = np.moveaxis(a, 1, -1)
    return rgb_to_argb(np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb)


def image_to_argb(image: np.ndarray) -> np.ndarray:
    """(H, W) uint32 ARGB of a (C, H, W) or (H, W) sample (see image_to_rgb01)."""
    return rgb_to_argb(image_to_rgb01(image))


def qimage(argb: np.ndarray) -> QImage:
    """An owned QImage (Format_RGB32) of a 2-D uint32 0xFFRRGGBB array."""
    a = np.ascontiguousarray(argb, dtype=np.uint32)
    h, w = a.shape
    return QImage(a.data, w, h, 4 * w, QImage.Format.Format_RGB32).copy()


def fitted_rect(area: QRect, w: int, h: int) -> QRect:
    """The largest rect of aspect w:h centred in ``area`` (whole-pixel multiples when it can be)."""
    if w <= 0 or h <= 0 or area.width() <= 0 or area.height() <= 0:
        return QRect()
    s = min(area.width() / w, area.height() / h)
    if s >= 1:
        s = float(int(s))  # whole pixels: every source pixel becomes an equal square
    tw, th = max(1, int(w * s)), max(1, int(h * s))
    return QRect(area.x() + (area.width() - tw) // 2, area.y() + (area.height() - th) // 2, tw, th)
