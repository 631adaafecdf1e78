"""Datasets: every kind the app offers, behind one ``describe`` / ``load``.

* ``base``     - DataParam, DataInfo, Data, the stratified split, standardisation, file checks
* ``tabular``  - generated 2-D sets, iris and digits (sklearn), the user's CSV files
* ``images``   - generated shapes, IDX (MNIST), image folders (Pillow), .npz archives
  (with ``shapes``, ``idx`` and ``npz`` doing the reading)

Imports run one way: base <- tabular, shapes, idx, npz <- images <- this package.
``describe`` is cheap (no torch, no sklearn, no Pillow) so the editor can check shapes while
the app starts; ``load`` makes the arrays. Features are standardised with training-set
statistics only.
"""
from __future__ import annotations

from typing import Any

from engine.datasets import images, regression, sequences, tabular
from engine.datasets.base import COMMON_PARAMS, Data, DataInfo, DataParam, split, standardise
from engine.datasets.tabular import DATASET_HELP, DATASET_PARAMS, TWO_D
from engine.spec import DatasetSpec

__all__ = ["COMMON_PARAMS", "DATASET_HELP", "DATASET_PARAMS", "TWO_D", "Data", "DataInfo", "DataParam", "DatasetSpec",
           "all_kinds", "describe", "images", "is_image_kind", "load", "regression", "resolve_params", "sequences",
           "split", "standardise", "tabular"]


def all_kinds() -> list[str]:
    """Every dataset kind, tabular and image."""
    return list(DATASET_PARAMS) + list(images.IMAGE_KINDS) + list(regression.PARAMS) + list(sequences.PARAMS)


def is_image_kind(kind: str) -> bool:
    return kind in images.IMAGE_KINDS


def _module_for(kind: str):
    if kind in DATASET_PARAMS:
        return tabular
    if kind in images.IMAGE_KINDS:
        return images
    for mod in (regression, sequences):
        if kind in mod.PARAMS:
            return mod
    raise ValueError(f"dataset.kind: unknown dataset {kind!r:.60} - choose one of {', '.join(all_kinds())}")


def resolve_params(ds: DatasetSpec) -> dict[str, Any]:
    """The dataset's params with defaults filled in; ValueError names each bad field and the fix."""
    mod = _module_for(ds.kind)
    return mod.resolve_params(ds)


def describe(ds: DatasetSpec) -> DataInfo:
    """Input shape and classes without generating data (headers and folder listings are read)."""
    return _module_for(ds.kind).describe(ds)


def load(ds: DatasetSpec, progress=None) -> Data:
    """Generate or read the dataset, split it stratified, and standardise with training statistics.

    ``progress(done, total)``, if given, follows a long read (an image folder); returning False
    from it stops the read with ``images.LoadCancelled``."""
    mod = _module_for(ds.kind)
    return mod.load(ds, progress) if mod is images else mod.load(ds)
