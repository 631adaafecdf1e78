"""The example designs in assets/examples: they load cleanly, read well on the canvas and really learn.

Accuracy is checked twice: the trainer's reported validation accuracy must pass the bar, and it
must equal sklearn's accuracy_score of the trained model's own predictions.
"""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score

from engine import datasets, validation
from engine import spec as spec_mod
from engine.trainer import Trainer, outputs_to_pred

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "assets", "examples")
REQUIRED = ("xor.json", "spiral.json", "iris.json", "digits_cnn.json", "residual_mlp.json")
FILES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(EXAMPLES, "*.json")))

# (epochs or None for the design's own, validation accuracy bar). Full runs wherever they take
# a few seconds; shapes_cnn trains a quarter of its epochs against a lower bar.
TRAINING = {
    "xor.json": (None, 0.99),
    "iris.json": (None, 0.95),
    "spiral.json": (None, 0.95),
    "residual_mlp.json": (None, 0.95),
    "digits_cnn.json": (None, 0.97),
    "shapes_cnn.json": (4, 0.90),
    "deep_sigmoid.json": (3, 0.45),  # vanishing gradients: it is not meant to learn in a few epochs
    "deep_relu_he.json": (None, 0.95),
    "playground_default.json": (150, 0.95),
    # overfitting on 30 points: validation stays far below training (1.0); dropout narrows the gap
    "overfit_mlp.json": (None, 0.7),
    "overfit_mlp_dropout.json": (None, 0.75),  # TensorFlow Playground's own problem (fused path, issue 14)
}
# regression, recurrent and attention examples, trained through the CLI (engine.cli.main) with
# fewer epochs than the design's own where the claim still holds with margin (full-length runs
# and their times are in the README): (epochs, metric, bar); metric "r2" and "val_accuracy" must
# reach the bar, "val_loss<" must stay under it, "val_loss>" must stay over it (the RNN that fails).
CLI_TRAINING = {
    "regression_sine.json": (40, "val_r2", 0.95),
    "regression_plane.json": (10, "val_r2", 0.95),
    "regression_gaussians.json": (60, "val_r2", 0.8),
    "gru_forecast.json": (4, "val_r2", 0.95),
    "lstm_adding.json": (4, "val_loss<", 0.05),
    "rnn_adding.json": (4, "val_loss>", 0.15),
    "char_lstm.json": (5, "val_accuracy", 0.45),
    "attention_recall.json": (8, "val_accuracy", 0.95),
}
# generative examples: the bar their notes state (engine.autoencoder recon_mse in pixels; the GAN's
# ring distance is checked in tests/engine/test_generative.py)
GENERATIVE = {"autoencoder_digits.json": ("recon_mse", 0.02), "vae_digits.json": ("recon_mse", 0.045),
              "gan_ring.json": None}


def load(name: str) -> spec_mod.Spec:
    return spec_mod.load(os.path.join(EXAMPLES, name))


def test_the_documented_examples_exist():
    assert set(REQUIRED) <= set(FILES)
    from engine.datasets import all_kinds

    if "shapes" in all_kinds():
        assert "shapes_cnn.json" in FILES
    assert set(FILES) <= set(TRAINING) | set(CLI_TRAINING) | set(GENERATIVE), "a new example needs a training check here"


@pytest.mark.parametrize("name", FILES)
def test_example_is_valid_canonical_and_documented(name):
    spec = load(name)
    problems = validation.validate(spec)
    assert problems == [], [str(p) for p in problems]  # not even warnings
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as fh:
        assert fh.read() == spec_mod.dumps(spec), "rewrite the file with engine.spec.save so diffs stay clean"
    assert spec.name and spec.name != "untitled"
    views = ("decision boundary", "neuron map", "filters", "feature map", "saliency", "accuracy curve", "weights",
             "function fit view", "hidden state view", "attention view", "generated text view", "prediction view",
             "Latent view", "GAN view")
    assert len(spec.notes) > 200 and any(v in spec.notes for v in views), "notes should say which views to watch"


@pytest.mark.parametrize("name", FILES)
def test_example_reads_top_to_bottom_without_overlapping_nodes(name):
    """Edges point down; a long chain may wrap like newspaper columns (widgets/editor/layout.py), its
    edge then running from the bottom of one column to the top of the next one on the right."""
    spec = load(name)
    pos = {lay.id: lay.pos for lay in spec.layers}
    for e in spec.edges:
        (sx, sy), (dx, dy) = pos[e.src], pos[e.dst]
        assert dy > sy or (dx > sx and dy == 0.0), f"edge {e.src}->{e.dst} points upwards"
    for i, a in enumerate(spec.layers):
        for b in spec.layers[i + 1:]:
            dx, dy = abs(a.pos[0] - b.pos[0]), abs(a.pos[1] - b.pos[1])
            assert dx >= 200 or dy >= 100, f"{a.id} and {b.id} overlap on the canvas"


def test_digits_cnn_has_the_documented_layer_sequence():
    spec = load("digits_cnn.json")
    order = ["Input", "Conv2d", "Activation", "MaxPool2d", "Conv2d", "Activation", "MaxPool2d", "Flatten", "Dense",
             "Activation", "Output"]
    chain, lid = [], next(lay.id for lay in spec.layers if lay.kind == "Input")
    while lid:
        chain.append(spec.layer(lid).kind)
        nxt = spec.outputs_of(lid)
        lid = nxt[0] if nxt else None
    assert chain == order


def test_residual_mlp_has_a_real_skip_connection():
    spec = load("residual_mlp.json")
    adds = [lay for lay in spec.layers if lay.kind == "Add"]
    assert len(adds) == 1
    a, b = spec.inputs_of(adds[0].id)

    def reaches(src, dst):
        stack = [src]
        while stack:
            n = stack.pop()
            if n == dst:
                return True
            stack.extend(spec.outputs_of(n))
        return False

    # one input of Add is upstream of the other: the block's input skips the block
    assert reaches(a, b) or reaches(b, a)


@pytest.mark.parametrize("name", sorted(CLI_TRAINING))
def test_sequence_and_regression_examples_train_from_the_cli_to_their_bar(name, capsys):
    import json

    from engine.cli import main

    epochs, metric, bar = CLI_TRAINING[name]
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # small recurrent nets on 2 shared cores: extra threads only wait
    try:
        code = main([os.path.join(EXAMPLES, name), "--epochs", str(epochs), "--device", "cpu", "--quiet"])
    finally:
        torch.set_num_threads(old)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["state"] == "finished"
    key = metric.rstrip("<>")
    value = summary[key]
    if metric.endswith("<"):
        assert value < bar, f"{name}: {key} {value:.4f} >= {bar}"
    elif metric.endswith(">"):
        assert value > bar, f"{name}: {key} {value:.4f} <= {bar}"
    else:
        assert value >= bar, f"{name}: {key} {value:.4f} < {bar}"


@pytest.mark.parametrize("name", [n for n in FILES if GENERATIVE.get(n)])
def test_generative_example_trains_to_its_stated_bar(name):
    from engine.tasks import load_data, make_trainer

    key, bar = GENERATIVE[name]
    spec = load(name)
    assert str(bar) in spec.notes, "the notes state the bar"
    trainer, _ = make_trainer(spec, load_data(spec), device="cpu")
    result = trainer.run()
    assert result.history[key][-1] < bar


@pytest.mark.parametrize("name", [n for n in FILES if n in TRAINING])
def test_example_trains_to_its_accuracy_bar(name):
    epochs, bar = TRAINING[name]
    spec = load(name)
    data = datasets.load(spec.dataset)
    trainer = Trainer(spec, data, device="cpu", epochs=epochs)
    result = trainer.run()
    assert result.stopped_reason == "finished all epochs"
    assert result.val_accuracy >= bar, f"{name}: {result.val_accuracy:.3f} < {bar}"

    model = trainer.model.eval()
    with torch.no_grad():
        pred = outputs_to_pred(model(torch.as_tensor(data.x_val)), spec.training.loss).numpy()
    assert accuracy_score(data.y_val, pred) == pytest.approx(result.val_accuracy, abs=1e-9)
    assert len(np.unique(data.y_val)) == data.info.n_classes  # every class is in the validation set
