"""Regression and sequence data, losses and scores, checked against formulas, sklearn and the raw files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import mean_absolute_error, r2_score

from engine import datasets, validation
from engine.datasets import sequences
from engine.probes import Prober
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec
from engine.trainer import Trainer, loss_fn


def load(kind, **params):
    return datasets.load(DatasetSpec(kind, params))


def spec_for(kind, params, chain, loss="mse", epochs=3):
    spec = Spec(name="t", dataset=DatasetSpec(kind, params), layers=[LayerSpec("input1", "Input")])
    prev = "input1"
    for i, (k, p) in enumerate(chain + [("Output", {})]):
        lid = "output1" if k == "Output" else f"l{i}"
        spec.layers.append(LayerSpec(lid, k, p))
        spec.edges.append(EdgeSpec(prev, lid))
        prev = lid
    spec.training.loss, spec.training.epochs, spec.training.device = loss, epochs, "cpu"
    return spec


# ---- data ------------------------------------------------------------------------------------

def test_adding_problem_targets_are_the_sum_of_the_two_marked_numbers():
    d = load("adding", n_samples=500, length=20)
    x = d.raw_x_train
    assert x.shape[1:] == (20, 2) and d.info.task == "regression"
    marks = x[:, :, 1]
    assert (marks.sum(1) == 2).all()
    assert (marks[:, :10].sum(1) == 1).all(), "one marker in each half"
    assert np.allclose(d.y_train[:, 0], (x[:, :, 0] * marks).sum(1), atol=1e-6)
    big = load("adding", n_samples=20000, length=20)
    assert abs(big.y_train.var() - 1 / 6) < 0.01, "the mean predictor's MSE is the variance 1/6"


def test_recall_parity_and_chars_labels_follow_their_inputs():
    d = load("recall", n_samples=300, length=12, vocab=5, position=3)
    assert d.info.vocab == 5 and (d.x_train == d.raw_x_train).all(), "token ids are never standardised"
    assert (d.y_train == d.x_train[:, 3]).all()
    p = load("parity", n_samples=300, length=6)
    assert (p.y_train == p.raw_x_train[:, :, 0].sum(1) % 2).all()
    c = load("chars", length=10, n_samples=200)
    text = open(sequences.CORPUS, encoding="utf-8").read()
    window = "".join(c.info.tokens[int(t)] for t in c.x_train[0]) + c.info.tokens[int(c.y_train[0])]
    assert window in text


def test_sine_forecast_continues_each_wave():
    d = load("sine_forecast", n_samples=50, length=30, horizon=3)
    x, y = d.raw_x_train[:, :, 0], d.y_train
    assert y.shape == (40, 3)
    # a sampled sinusoid obeys s[t+1] = 2 cos(w) s[t] - s[t-1]; w from the window itself
    series = np.concatenate([x, y], 1).astype(np.float64)
    c = (series[:, 2:] + series[:, :-2]) / (2 * series[:, 1:-1] + 1e-12)
    ok = np.abs(series[:, 1:-1]) > 0.2
    spread = [np.ptp(row[m]) for row, m in zip(c, ok, strict=True)]
    assert np.median(spread) < 1e-3


def test_fit_sets_follow_their_functions():
    d = load("fit_sine", n_points=400, noise=0.0)
    assert np.allclose(d.y_train[:, 0], np.sin(d.raw_x_train[:, 0]), atol=1e-5)
    step = load("fit_step", noise=0.0)
    assert set(np.unique(step.y_train)) == {-1.0, 1.0}


def test_csv_regression_and_csv_series(tmp_path):
    path = tmp_path / "houses.csv"
    rows = ["size,rooms,price"] + [f"{s},{r},{2 * s + r}" for s, r in zip(range(10, 40), range(30), strict=True)]
    path.write_text("\n".join(rows))
    info = datasets.describe(DatasetSpec("csv", {"path": str(path), "label_column": "price", "task": "regression"}))
    assert info.task == "regression" and info.input_shape == (2,)
    d = load("csv", path=str(path), label_column="price", task="regression")
    assert np.allclose(d.y_train[:, 0], 2 * d.raw_x_train[:, 0] + d.raw_x_train[:, 1])
    bad = tmp_path / "bad.csv"
    bad.write_text("a,price\n1,cheap\n2,dear\n3,3\n")
    with pytest.raises(ValueError, match="'cheap' in 'price' is not a number"):
        load("csv", path=str(bad), label_column="price", task="regression")
    with pytest.raises(ValueError, match="task"):
        datasets.describe(DatasetSpec("csv", {"path": str(path), "label_column": "price", "task": "sorting"}))
    series = tmp_path / "series.csv"
    series.write_text("value\n" + "\n".join(str(v * v) for v in range(40)))
    s = load("csv_series", path=str(series), column="value", length=5, horizon=2)
    allx = np.concatenate([s.raw_x_train, s.raw_x_val])[:, :, 0]
    ally = np.concatenate([s.y_train, s.y_val])
    start = np.sqrt(allx[:, 0]).round()
    assert np.allclose(ally, (start[:, None] + np.arange(5, 7)) ** 2)
    with pytest.raises(ValueError, match="no column 'price'"):
        datasets.describe(DatasetSpec("csv_series", {"path": str(series), "column": "price"}))


# ---- losses, scores, validation -----------------------------------------------------------------

def test_regression_losses_match_their_formulas():
    out = torch.tensor([[0.0], [2.0], [5.0]])
    y = torch.tensor([[0.5], [2.0], [1.0]])
    err = (out - y).numpy().ravel()
    assert loss_fn(out, y, "mse").item() == pytest.approx(np.mean(err ** 2))
    assert loss_fn(out, y, "mae").item() == pytest.approx(np.mean(np.abs(err)))
    huber = np.where(np.abs(err) <= 1, 0.5 * err ** 2, np.abs(err) - 0.5)
    assert loss_fn(out, y, "huber").item() == pytest.approx(huber.mean())
    # classification keeps its meaning: mse of one-hot targets
    logits, cls = torch.tensor([[0.2, 0.8]]), torch.tensor([1])
    assert loss_fn(logits, cls, "mae").item() == pytest.approx(F.l1_loss(logits, torch.tensor([[0.0, 1.0]])).item())


def test_classification_losses_on_a_regression_set_are_refused_with_the_fix():
    spec = spec_for("fit_sine", {}, [("Dense", {"units": 4})], loss="cross_entropy")
    probs = validation.validate(spec)
    assert any(p.where == "training.loss" and "mse, mae or huber" in p.message for p in probs)
    assert validation.errors(validation.validate(spec_for("fit_sine", {}, [("Dense", {"units": 4})], loss="huber"))) == []


def test_trainer_reports_r2_and_mae_that_sklearn_agrees_with():
    spec = spec_for("reg_plane", {"n_points": 300}, [("Dense", {"units": 4}), ("Activation", {"function": "tanh"})],
                    epochs=5)
    data = datasets.load(spec.dataset)
    trainer = Trainer(spec, data, device="cpu")
    result = trainer.run()
    with torch.no_grad():
        pred = trainer.model.eval()(torch.as_tensor(data.x_val)).numpy()
    assert result.val_accuracy == pytest.approx(r2_score(data.y_val, pred), abs=1e-5)
    assert result.history["val_mae"][-1] == pytest.approx(mean_absolute_error(data.y_val, pred), abs=1e-5)
    assert result.val_accuracy > 0.5


def test_classification_history_has_no_mae():
    spec = spec_for("xor", {"n_points": 100}, [("Dense", {"units": 4})], loss="cross_entropy", epochs=2)
    result = Trainer(spec, device="cpu").run()
    assert len(result.history["val_mae"]) == 2 and np.isnan(result.history["val_mae"]).all()


# ---- probes ------------------------------------------------------------------------------------

def test_fit_probe_curve_is_the_sum_of_the_unit_contributions_plus_bias():
    spec = spec_for("fit_abs", {"n_points": 100}, [("Dense", {"units": 5}), ("Activation", {"function": "relu"})])
    data = datasets.load(spec.dataset)
    trainer = Trainer(spec, data, device="cpu")
    trainer.run()
    ex = Prober(data, "mse", {"fit": True})(trainer.model, force=True)
    assert ex["problems"] == {}
    assert np.allclose(ex["fit_units"].sum(0) + ex["fit_bias"], ex["fit_y"], atol=1e-5)
    # the curve is the model on the raw x, standardised as the data were
    xs = (ex["fit_x"] - data.mean[0]) / data.std[0]
    with torch.no_grad():
        direct = trainer.model(torch.as_tensor(xs[:, None], dtype=torch.float32))[:, 0].numpy()
    assert np.allclose(direct, ex["fit_y"], atol=1e-5)
    assert "boundary" not in ex and "confusion" not in ex


def test_sequence_probes_give_states_attention_rows_and_text():
    spec = spec_for("chars", {"length": 8, "n_samples": 200},
                    [("Embedding", {"dim": 8, "vocab": 40}), ("PositionalEncoding", {}), ("SelfAttention", {"heads": 2}),
                     ("LSTM", {"units": 6})], loss="cross_entropy", epochs=1)
    data = datasets.load(spec.dataset)
    trainer = Trainer(spec, data, device="cpu")
    trainer.run()
    opts = {"seq_sample": 2, "hidden": True, "attention": True, "seq_pred": True, "text": {"length": 30}}
    ex = Prober(data, "cross_entropy", opts)(trainer.model, force=True)
    assert ex["problems"] == {}
    assert ex["hidden"].shape == (8, 6) and ex["gates"]["forget"].shape == (8, 6)
    w = ex["attention"]["l2"]
    assert w.shape == (2, 8, 8) and np.allclose(w.sum(-1), 1, atol=1e-5)
    assert len(ex["text"]) == 30 and set(ex["text"]) <= set(data.info.tokens)
    assert ex["seq_tokens"] == [data.info.tokens[int(t)] for t in data.x_val[2]]
    before = torch.random.get_rng_state()
    again = Prober(data, "cross_entropy", opts)(trainer.model, force=True)
    assert again["text"] == ex["text"], "same model, same text: sampling has its own fixed stream"
    assert torch.equal(before, torch.random.get_rng_state())
