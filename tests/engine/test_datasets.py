"""Datasets: generated 2-D sets, iris/digits against sklearn, CSV files, splitting and standardisation."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris

from engine import datasets as D
from engine.spec import DatasetSpec

TWO_D = ["xor", "circles", "gaussians", "spiral", "moons"]


def ds(kind: str, **params) -> DatasetSpec:
    return DatasetSpec(kind, params)


def rows_sorted(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(row, label) pairs as one sorted array: compares datasets as multisets of labelled samples."""
    m = np.concatenate([x.reshape(len(x), -1).astype(np.float64), y[:, None].astype(np.float64)], axis=1)
    return m[np.lexsort(m.T[::-1])]


def test_every_kind_is_listed_with_help_and_params():
    assert set(TWO_D + ["iris", "digits", "csv"]) <= set(D.all_kinds())
    for kind, params in D.DATASET_PARAMS.items():
        assert D.DATASET_HELP[kind]
        assert {"val_fraction", "seed"} <= {p.name for p in params}
    for kind in TWO_D:
        assert {"n_points", "noise"} <= {p.name for p in D.DATASET_PARAMS[kind]}


@pytest.mark.parametrize("kind", TWO_D)
def test_two_d_sets_are_reproducible_split_and_described_correctly(kind):
    spec = ds(kind, n_points=300, noise=0.2, val_fraction=0.3, seed=4)
    a, b = D.load(spec), D.load(spec)
    info = D.describe(spec)
    assert a.info == info and info.input_shape == (2,) and info.is_2d and not info.is_image
    assert len(info.class_names) == info.n_classes == 2
    for arr in ("x_train", "y_train", "x_val", "y_val"):
        assert np.array_equal(getattr(a, arr), getattr(b, arr)), arr  # same seed, same data
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert a.x_train.shape[1:] == info.input_shape
    assert len(a.x_train) + len(a.x_val) == 300
    assert abs(len(a.x_val) - 90) <= 2  # val_fraction honoured (per class rounding)
    for y in (a.y_train, a.y_val):
        assert set(np.unique(y)) == set(range(info.n_classes))  # every class on both sides
    c = D.load(ds(kind, n_points=300, noise=0.2, val_fraction=0.3, seed=5))
    assert not np.array_equal(a.raw_x_train, c.raw_x_train)  # a different seed gives different data
    noisy = D.load(ds(kind, n_points=300, noise=1.0, val_fraction=0.3, seed=4))
    assert not np.array_equal(a.raw_x_train, noisy.raw_x_train)


@pytest.mark.parametrize("kind", ["gaussians", "spiral"])
@pytest.mark.parametrize("classes, n_points, val_fraction", [(8, 20, 0.9), (8, 20, 0.05), (3, 21, 0.5), (5, 100, 0.2)])
def test_every_class_reaches_both_splits_even_for_tiny_sets(kind, classes, n_points, val_fraction):
    for seed in range(5):
        spec = ds(kind, classes=classes, n_points=n_points, val_fraction=val_fraction, seed=seed)
        d = D.load(spec)
        assert D.describe(spec).n_classes == classes == d.info.n_classes
        assert set(np.unique(d.y_train)) == set(range(classes)), seed
        assert set(np.unique(d.y_val)) == set(range(classes)), seed


@pytest.mark.parametrize("kind", ["xor", "circles", "iris", "digits"])
def test_standardisation_uses_training_statistics_only(kind):
    d = D.load(ds(kind, val_fraction=0.25, seed=1))
    axes = (0, 2, 3) if d.x_train.ndim == 4 else (0,)
    mean, std = d.x_train.mean(axis=axes), d.x_train.std(axis=axes)
    assert np.allclose(mean, 0, atol=1e-5)
    assert np.allclose(std[d.raw_x_train.std(axis=axes) > 0], 1, atol=1e-4)
    # the validation set is mapped with the training statistics ...
    assert np.allclose(d.x_val, (d.raw_x_val - d.mean) / d.std, atol=1e-5)
    # ... and changing validation points changes nothing on the training side
    other = D.standardise(d.info, d.raw_x_train, d.y_train, d.raw_x_val * 7 + 100, d.y_val)
    assert np.array_equal(other.x_train, d.x_train)
    assert np.array_equal(other.mean, d.mean) and np.array_equal(other.std, d.std)


def test_constant_feature_does_not_divide_by_zero():
    info = D.DataInfo("t", (2,), 2, ["a", "b"])
    x = np.array([[1, 5], [2, 5], [3, 5]], np.float32)
    d = D.standardise(info, x, np.array([0, 1, 0]), x[:1], np.array([0]))
    assert np.isfinite(d.x_train).all() and np.allclose(d.x_train[:, 1], 0)


def test_iris_is_sklearns_iris_split_stratified():
    spec = ds("iris", val_fraction=0.2, seed=3)
    d, info, ref = D.load(spec), D.describe(spec), load_iris()
    assert info.input_shape == (4,) and info.n_classes == 3 and d.info == info
    assert info.class_names == list(ref.target_names)
    assert len(info.feature_names) == 4
    got = rows_sorted(np.concatenate([d.raw_x_train, d.raw_x_val]), np.concatenate([d.y_train, d.y_val]))
    want = rows_sorted(ref.data.astype(np.float32), ref.target)
    assert np.array_equal(got, want)
    assert len(d.y_val) == 30 and all((d.y_val == c).sum() == 10 for c in range(3))


def test_digits_are_sklearns_digits_as_8x8_images():
    spec = ds("digits", val_fraction=0.1, seed=0)
    d, info, ref = D.load(spec), D.describe(spec), load_digits()
    assert info.input_shape == (1, 8, 8) == d.x_train.shape[1:] and info.is_image and info.n_classes == 10
    assert info.class_names == [str(c) for c in ref.target_names]
    raw = np.concatenate([d.raw_x_train, d.raw_x_val])
    assert raw.min() >= 0 and raw.max() <= 1  # pixels scaled 0..1 (sklearn's 0..16 / 16)
    got = rows_sorted(raw, np.concatenate([d.y_train, d.y_val]))
    want = rows_sorted((ref.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), ref.target)
    assert np.array_equal(got, want)
    assert ref.images.shape[1:] == (8, 8)
    assert abs(len(d.y_val) - 180) <= 10 and set(np.unique(d.y_val)) == set(range(10))


def test_different_seeds_split_iris_differently():
    a, b = D.load(ds("iris", seed=1)), D.load(ds("iris", seed=2))
    assert not np.array_equal(a.raw_x_val, b.raw_x_val)


# ---- CSV ------------------------------------------------------------------------------------

def write(tmp_path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_numeric_columns_and_a_named_label_column(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["height,kind,weight"] + [f"{rng.normal():.4f},{['cat', 'dog'][i % 2]},{rng.normal() + i % 2:.4f}"
                                      for i in range(40)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    spec = ds("csv", path=path, label_column="kind", val_fraction=0.25)
    info, d = D.describe(spec), D.load(spec)
    assert info.input_shape == (2,) and info.feature_names == ["height", "weight"]
    assert info.class_names == ["cat", "dog"] and d.info == info
    raw = np.array([[float(c) for j, c in enumerate(r.split(",")) if j != 1] for r in lines[1:]], np.float32)
    labels = np.array([0 if r.split(",")[1] == "cat" else 1 for r in lines[1:]])
    assert np.array_equal(rows_sorted(np.concatenate([d.raw_x_train, d.raw_x_val]), np.concatenate([d.y_train, d.y_val])),
                          rows_sorted(raw, labels))
    assert len(d.y_val) == 10


@pytest.mark.parametrize("body, words", [
    ("a,b,label\n1,2,x\n3,,y\n5,6,x\n", ["line 3", "column 'b'", "missing"]),
    ("a,b,label\n1,2,x\n3,4,y\n5,six,x\n", ["line 4", "column 'b'", "'six' is not a number"]),
    ("a,b,label\n1,2,x\n\n\n3,4,y\n5,six,x\n", ["line 6", "column 'b'"]),  # blank lines still count
    ("a,b,label\n1,2,x\n3,nan,y\n5,6,x\n", ["line 3", "column 'b'", "finite"]),
    ("a,b,label\n1,2,x\n3,1e300,y\n5,6,x\n", ["line 3", "column 'b'", "finite"]),
    ("a,b,label\n1,2,x\n3,4\n5,6,x\n", ["line 3", "2 values", "header has 3"]),
    ("a,b,label\n1,2,x\n3,4,\n5,6,x\n", ["line 3", "missing label"]),
    ("a,b,kind\n1,2,x\n3,4,y\n", ["no column named 'label'", "a, b, kind"]),
    ("a,b,label\n1,2,x\n3,4,x\n", ["only one class"]),
    ("a,b,label\n1,2,x\n", ["at least two data rows"]),
    ("label\n1\n2\n3\n", ["no feature columns"]),
])
def test_csv_problems_name_the_line_and_column(tmp_path, body, words):
    spec = ds("csv", path=write(tmp_path, body))
    with pytest.raises(ValueError) as exc:
        D.load(spec)
    for w in words:
        assert w in str(exc.value), str(exc.value)


def test_csv_file_problems(tmp_path):
    with pytest.raises(ValueError, match="choose a CSV"):
        D.describe(ds("csv"))
    with pytest.raises(ValueError, match="no file"):
        D.describe(ds("csv", path=str(tmp_path / "missing.csv")))
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("a,label\n1,\xe9t\xe9\n2,x\n".encode("latin-1"))
    with pytest.raises(ValueError, match="cannot read"):
        D.describe(ds("csv", path=str(bad)))


# ---- params ---------------------------------------------------------------------------------

def test_bad_params_are_all_named_at_once():
    with pytest.raises(ValueError) as exc:
        D.resolve_params(ds("xor", n_points=5, noise="lots", colour=1, seed=2.5, val_fraction=10**400))
    lines = str(exc.value).splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["dataset.params.n_points", "dataset.params.noise", "dataset.params.colour",
                                                   "dataset.params.seed", "dataset.params.val_fraction"]
    assert "20..100000" in lines[0] and "remove" in lines[2] and "whole" in lines[3]
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        D.describe(ds("mnist"))
    assert D.resolve_params(ds("spiral", classes=3.0))["classes"] == 3
