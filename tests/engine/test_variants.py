"""Compare runs (issue 12): sweeps -> variant designs (engine.variants), the design file's "compare"
part, and batched training (engine.batched) checked against separate engine.trainer.Trainer runs.

The reference for the batched numbers is N separate Trainer runs with the same seeds: Trainer uses
torch.optim's optimisers and schedulers and an nn.Module forward, the batched trainer writes the
update rules out over stacked parameters and runs a batched forward - two independent routes.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time

import numpy as np
import pytest
import torch

from engine import datasets
from engine import spec as S
from engine.batched import BatchedTrainer
from engine.datasets.base import Data, DataInfo
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, TrainingSpec
from engine.trainer import Trainer
from engine.variants import (
    MAX_VARIANTS,
    Axis,
    Sweep,
    SweepError,
    batch_groups,
    check_sweep,
    expand,
    structure_key,
    sweepable_settings,
)

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")
TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def chain(layers: list[LayerSpec]) -> list[EdgeSpec]:
    return [EdgeSpec(a.id, b.id) for a, b in zip(layers, layers[1:], strict=False)]


def mlp_spec(**training) -> Spec:
    lays = [LayerSpec("in1", "Input"), LayerSpec("dense1", "Dense", {"units": 6}),
            LayerSpec("act1", "Activation", {"function": "tanh"}), LayerSpec("drop1", "Dropout", {"rate": 0.0}),
            LayerSpec("out1", "Output")]
    t = dict(optimizer="sgd", lr=0.1, momentum=0.0, batch_size=16, epochs=2, seed=7, device="cpu")
    t.update(training)
    return Spec(name="mlp", dataset=DatasetSpec("xor", {"n_points": 100, "val_fraction": 0.2, "seed": 1}), layers=lays,
                edges=chain(lays), training=TrainingSpec(**t))


@pytest.fixture(scope="module")
def xor_data() -> Data:
    return datasets.load(mlp_spec().dataset)


def cnn_spec(**training) -> Spec:
    lays = [LayerSpec("in1", "Input"), LayerSpec("conv1", "Conv2d", {"filters": 4, "kernel": 3}),
            LayerSpec("act1", "Activation", {"function": "relu"}), LayerSpec("pool1", "MaxPool2d", {"size": 2}),
            LayerSpec("conv2", "Conv2d", {"filters": 3, "kernel": 3, "padding": "valid"}),
            LayerSpec("bn1", "BatchNorm"), LayerSpec("flat1", "Flatten"), LayerSpec("out1", "Output")]
    t = dict(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=8, epochs=2, seed=3, device="cpu")
    t.update(training)
    return Spec(name="cnn", dataset=DatasetSpec("digits", {}), layers=lays, edges=chain(lays), training=TrainingSpec(**t))


@pytest.fixture(scope="module")
def image_data() -> Data:
    """A tiny stand-in for an image set: 40 + 12 random 1x8x8 images of 3 classes (the class shifts the mean)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 52)
    x = (rng.normal(size=(52, 1, 8, 8)) + y[:, None, None, None] * 0.7).astype(np.float32)
    info = DataInfo("digits", (1, 8, 8), 3, ["a", "b", "c"])
    return Data(info, x[:40], y[:40].astype(np.int64), x[40:], y[40:].astype(np.int64), np.zeros(1), np.ones(1))


def weights(model) -> list[torch.Tensor]:
    return [v.detach().float() for v in model.state_dict().values()]


def assert_same_run(batched_result, batched_model, trainer: Trainer, result) -> None:
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        np.testing.assert_allclose(batched_result.history[key], result.history[key], **TOL, err_msg=key)
    assert batched_result.steps == result.steps and batched_result.epochs == result.epochs
    for a, b in zip(weights(batched_model), weights(trainer.model), strict=True):
        torch.testing.assert_close(a, b, **TOL)


# ---- sweeps -> variants ---------------------------------------------------------------------------

def test_two_axes_give_their_product_in_grid_order_with_labels_of_what_differs():
    base = mlp_spec()
    sweep = Sweep([Axis("training.lr", [0.01, 0.1, 1.0]), Axis("layer.act1.function", ["tanh", "relu"])])
    vs = expand(base, sweep)
    assert len(vs) == 6
    assert [v.cell for v in vs] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert [v.label for v in vs][:3] == ["lr=0.01, act1 function=tanh", "lr=0.01, act1 function=relu",
                                         "lr=0.1, act1 function=tanh"]
    assert [(v.spec.training.lr, v.spec.layer("act1").params["function"]) for v in vs] == \
        [(0.01, "tanh"), (0.01, "relu"), (0.1, "tanh"), (0.1, "relu"), (1.0, "tanh"), (1.0, "relu")]
    assert base.training.lr == 0.1 and base.layer("act1").params["function"] == "tanh"  # the base is untouched
    # an axis with one value does not differ, so it is not in the labels
    one = expand(base, Sweep([Axis("training.seed", [1, 2]), Axis("training.momentum", [0.5])]))
    assert [v.label for v in one] == ["seed=1", "seed=2"] and one[0].spec.training.momentum == 0.5


def test_more_than_the_cap_is_refused_naming_the_count_and_the_cap():
    sweep = Sweep([Axis("training.lr", [0.001, 0.01, 0.1, 1.0, 2.0]), Axis("training.seed", [1, 2, 3, 4])])
    with pytest.raises(SweepError) as err:
        expand(mlp_spec(), sweep)
    msg = str(err.value)
    assert "20 variants" in msg and str(MAX_VARIANTS) in msg and "lr" in msg and "seed" in msg
    assert len(expand(mlp_spec(), Sweep([Axis("training.lr", [0.1, 0.2, 0.3, 0.4]),
                                         Axis("training.seed", [1, 2, 3, 4])]))) == 16


@pytest.mark.parametrize("axis, where_words", [
    (Axis("layer.dense9.units", [2]), ["compare.axes[0]", "no layer dense9"]),
    (Axis("layer.dense1.size", [2]), ["compare.axes[0]", "no parameter size", "units"]),
    (Axis("layer.dense1.units", [0]), ["compare.axes[0]", "dense1 units", "outside"]),
    (Axis("training.optimizer", ["lbfgs"]), ["compare.axes[0]", "sgd"]),
    (Axis("training.speed", [1]), ["compare.axes[0]", "not a training setting"]),
    (Axis("training.lr", [0.1, 0.1]), ["compare.axes[0]", "twice"]),
    (Axis("layer.in1.present", [False]), ["compare.axes[0]", "Input layer cannot be removed"]),
])
def test_a_bad_axis_gets_a_message_naming_it_and_the_fix(axis, where_words):
    problems = check_sweep(mlp_spec(), Sweep([axis]))
    assert problems
    text = "\n".join(str(p) for p in problems)
    assert all(w in text for w in where_words), text
    with pytest.raises(SweepError):
        expand(mlp_spec(), Sweep([axis]))


def test_a_variant_that_is_no_valid_design_is_named():
    with pytest.raises(SweepError, match="lr=-1"):
        expand(mlp_spec(), Sweep([Axis("training.lr", [0.1, -1.0])]))


def test_removing_a_layer_joins_its_input_to_its_output():
    vs = expand(mlp_spec(), Sweep([Axis("layer.drop1.present", [True, False])]))
    assert [v.label for v in vs] == ["with drop1", "without drop1"]
    assert [lay.id for lay in vs[1].spec.layers] == ["in1", "dense1", "act1", "out1"]
    assert vs[1].spec.inputs_of("out1") == ["act1"] and vs[0].spec.inputs_of("out1") == ["drop1"]
    assert vs[0].structure_key != vs[1].structure_key


def test_structure_keys_group_what_can_train_batched():
    sweep = Sweep([Axis("training.seed", [1, 2]),
                   Axis("layer.dense1.init", ["default", "he_normal"])])
    same = expand(mlp_spec(), sweep)
    assert len({v.structure_key for v in same}) == 1 and batch_groups(same) == [[0, 1, 2, 3]]
    units = expand(mlp_spec(), Sweep([Axis("layer.dense1.units", [2, 8]), Axis("training.lr", [0.1, 0.2])]))
    assert batch_groups(units) == [[0, 1], [2, 3]]
    # a batch size changes no shapes but cannot share one batched step
    bs = expand(mlp_spec(), Sweep([Axis("training.batch_size", [8, 16]), Axis("training.optimizer", ["sgd", "adam"])]))
    assert len({v.structure_key for v in bs}) == 1 and batch_groups(bs) == [[0, 1], [2, 3]]
    moved = mlp_spec()
    moved.layers[1].pos = (99.0, 5.0)
    assert structure_key(moved) == structure_key(mlp_spec())


def test_the_dock_is_offered_every_setting_with_its_current_value():
    items = {i["setting"]: i for i in sweepable_settings(mlp_spec())}
    assert items["training.lr"]["current"] == 0.1 and items["training.optimizer"]["choices"][0] == "sgd"
    assert items["layer.dense1.units"]["type"] == "int" and items["layer.dense1.units"]["current"] == 6
    assert "relu" in items["layer.act1.function"]["choices"]
    assert "layer.drop1.present" in items and "layer.out1.present" not in items and "training.device" not in items


# ---- the design file ---------------------------------------------------------------------------

def test_a_sweep_is_saved_with_the_design_as_version_3_and_reads_back(tmp_path):
    spec = mlp_spec()
    spec.compare = Sweep([Axis("training.lr", [0.01, 0.1, 1.0]), Axis("layer.drop1.present", [True, False])])
    path = tmp_path / "d.json"
    S.save(spec, path)
    raw = json.loads(path.read_text())
    assert raw["version"] == 3
    assert raw["compare"] == {"axes": [{"setting": "training.lr", "values": [0.01, 0.1, 1.0]},
                                       {"setting": "layer.drop1.present", "values": [True, False]}]}
    back = S.load(path)
    assert back == spec and S.dumps(back) == path.read_text()
    assert len(expand(back)) == 6  # the saved sweep is the default


def test_older_files_open_unchanged_and_ignore_a_compare_key_they_did_not_know():
    for name in sorted(os.listdir(EXAMPLES)):
        path = os.path.join(EXAMPLES, name)
        text = open(path, encoding="utf-8").read()
        spec = S.load(path)
        assert spec.compare is None
        assert S.dumps(spec) == text, name  # written back byte for byte, in its old version
    raw = json.loads(open(os.path.join(EXAMPLES, "xor.json"), encoding="utf-8").read())
    plain = S.spec_from_dict(raw)
    for version in (1, 2):
        assert S.spec_from_dict(dict(raw, version=version, compare={"axes": "junk"})) == plain


def test_a_bad_compare_part_is_named():
    raw = mlp_spec().to_dict()
    raw["version"] = 3
    for bad, where in [({"axes": 3}, "compare"), ({"axes": [{"setting": "x", "values": [1]}]}, "compare.axes[0].setting"),
                       ({"axes": [{"setting": "training.lr", "values": []}]}, "compare.axes[0].values")]:
        with pytest.raises(S.SpecError) as err:
            S.spec_from_dict(dict(raw, compare=bad))
        assert err.value.problems[0].where == where


# ---- batched training equals separate runs --------------------------------------------------------

OPTIMISER_CASES = {
    "sgd": [dict(momentum=0.9, nesterov=True, weight_decay=1e-3), dict(momentum=0.5, lr=0.05, seed=3, l2=1e-3)],
    "adam": [dict(lr=0.01), dict(lr=0.03, seed=2, weight_decay=0.01, grad_clip=0.5)],
    "adamw": [dict(lr=0.01, weight_decay=0.1), dict(lr=0.02, seed=4, l1=1e-3, lr_schedule="cosine")],
    "rmsprop": [dict(lr=0.01, momentum=0.0), dict(lr=0.005, momentum=0.9, seed=5, lr_schedule="step", step_size=1)],
    "adagrad": [dict(lr=0.1), dict(lr=0.05, seed=9, lr_schedule="exponential", gamma=0.7)],
}


@pytest.mark.parametrize("optimizer", list(OPTIMISER_CASES))
def test_batched_variants_equal_separate_runs(optimizer, xor_data):
    specs = [mlp_spec(optimizer=optimizer, **kw) for kw in OPTIMISER_CASES[optimizer]]
    specs[1].layers[1].params["init"] = "he_uniform"  # init differs too
    bt = BatchedTrainer(specs, xor_data)
    results = bt.run()
    for i, spec in enumerate(specs):
        tr = Trainer(spec, xor_data)
        assert_same_run(results[i], bt.model_for(i), tr, tr.run())
    assert results[0].history["val_loss"][-1] != results[1].history["val_loss"][-1]


def test_mixed_optimisers_and_the_whole_model_vmap_equal_separate_runs(xor_data):
    specs = [mlp_spec(optimizer="sgd", momentum=0.9), mlp_spec(optimizer="adam", lr=0.01, seed=2),
             mlp_spec(optimizer="rmsprop", lr=0.01, seed=5)]
    for forward in ("layers", "vmap"):
        bt = BatchedTrainer(specs, xor_data, forward=forward)
        results = bt.run()
        for i, spec in enumerate(specs):
            tr = Trainer(spec, xor_data)
            assert_same_run(results[i], bt.model_for(i), tr, tr.run())


def test_batched_conv_net_with_batchnorm_equals_separate_runs(image_data):
    specs = [cnn_spec(), cnn_spec(lr=0.02, seed=11, weight_decay=1e-3)]
    bt = BatchedTrainer(specs, image_data)
    results = bt.run()
    for i, spec in enumerate(specs):
        tr = Trainer(spec, image_data)
        assert_same_run(results[i], bt.model_for(i), tr, tr.run())  # BatchNorm's running statistics included


def test_variants_that_cannot_share_a_batch_are_refused(xor_data):
    with pytest.raises(ValueError, match="batch_groups"):
        BatchedTrainer([mlp_spec(), mlp_spec(batch_size=8)], xor_data)


# ---- one variant stops, the others go on ---------------------------------------------------------

def test_stopping_one_variant_leaves_the_others_training(xor_data):
    specs = [mlp_spec(seed=1), mlp_spec(seed=2, lr=0.3), mlp_spec(seed=3, optimizer="adam", lr=0.01)]
    seen: list[list] = []
    bt = None

    def on_snapshot(snaps):
        seen.append([(s.state, s.step) for s in snaps])
        if snaps[1].step == 3 and snaps[1].state == "running":
            bt.stop_variant(1)

    bt = BatchedTrainer(specs, xor_data, on_snapshot=on_snapshot, max_rate=0)  # a snapshot every step
    results = bt.run()
    assert results[1].steps == 3 and "stopped by the user" in results[1].stopped_reason
    assert results[0].epochs == results[2].epochs == 2 and results[0].steps == results[2].steps == 10
    assert any(row[1] == ("stopped", 3) and row[0][0] == "running" and row[0][1] > 3 for row in seen)
    assert bt.variant_state(1) == "stopped" and bt.variant_state(0) == "finished"
    # the stopped variant kept the weights of its third step; the others trained as if alone
    ref = Trainer(specs[1], xor_data, on_snapshot=lambda s: ref.stop() if s.step == 3 else None, max_rate=0)
    ref.run()
    for a, b in zip(weights(bt.model_for(1)), weights(ref.model), strict=True):
        torch.testing.assert_close(a, b, **TOL)
    for i in (0, 2):
        tr = Trainer(specs[i], xor_data)
        assert_same_run(results[i], bt.model_for(i), tr, tr.run())


def test_a_diverging_variant_keeps_its_last_good_weights_and_the_others_finish(xor_data):
    specs = [mlp_spec(seed=1, loss="mse", epochs=3), mlp_spec(seed=2, loss="mse", epochs=3, lr=1e6)]
    snaps_seen = []
    bt = BatchedTrainer(specs, xor_data, on_snapshot=snaps_seen.append)
    results = bt.run()
    assert bt.variant_state(1) == "diverged" and "lower the learning rate" in results[1].stopped_reason
    assert results[0].epochs == 3 and bt.variant_state(0) == "finished"
    assert all(torch.isfinite(w).all() for w in weights(bt.model_for(1)))
    final = snaps_seen[-1]
    assert [s.state for s in final] == ["finished", "diverged"] and len(final[0].history["val_loss"]) == 3
    tr = Trainer(specs[1], xor_data)
    ref = tr.run()
    assert ref.stopped_reason.startswith("the loss became") and ref.epochs == results[1].epochs


# ---- model_for ---------------------------------------------------------------------------------

def test_model_for_is_a_normal_module_with_the_variants_own_weights(xor_data):
    specs = [mlp_spec(seed=1), mlp_spec(seed=2, lr=0.5)]
    bt = BatchedTrainer(specs, xor_data)
    bt.run()
    x = torch.as_tensor(xor_data.x_val)
    outs = []
    for i, spec in enumerate(specs):
        m = bt.model_for(i)
        assert isinstance(m, torch.nn.Module) and m.training  # as a Trainer's model: probes switch modes themselves
        tr = Trainer(spec, xor_data)
        tr.run()
        m.eval(), tr.model.eval()
        with torch.no_grad():
            outs.append(m(x))
            torch.testing.assert_close(outs[-1], tr.model(x), **TOL)
    assert not torch.allclose(outs[0], outs[1])
    # a copy: changing it does not change the run
    with torch.no_grad():
        next(bt.model_for(0).parameters()).add_(1.0)
    assert not math.isclose(float(next(bt.model_for(0).parameters()).detach().sum()), 0.0)
    torch.testing.assert_close(bt.model_for(0)(x), outs[0], **TOL)


# ---- the control surface the worker and the views use ----------------------------------------------

def wait_until(cond, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_pause_step_stop_one_while_paused_and_resume(xor_data):
    snaps: list = []
    bt = BatchedTrainer([mlp_spec(seed=1), mlp_spec(seed=2), mlp_spec(seed=3)], xor_data, on_snapshot=snaps.append,
                        max_rate=0)
    bt.pause()
    th = threading.Thread(target=bt.run, daemon=True)
    th.start()
    wait_until(lambda: snaps and snaps[-1][0].state == "paused")
    assert [s.step for s in snaps[-1]] == [0, 0, 0]
    bt.step_once()
    wait_until(lambda: snaps[-1][0].step == 1 and snaps[-1][0].state == "paused")
    bt.stop_variant(0)  # while paused: reported at once
    wait_until(lambda: snaps[-1][0].state == "stopped")
    assert [s.state for s in snaps[-1]] == ["stopped", "paused", "paused"]
    bt.resume()
    th.join(20)
    assert not th.is_alive()
    final = snaps[-1]
    assert [s.state for s in final] == ["stopped", "finished", "finished"]
    assert final[0].step == 1 and final[1].step == final[2].step == 10 and len(final[1].history["epoch"]) == 2


def test_set_hyper_changes_one_variant(xor_data):
    bt = BatchedTrainer([mlp_spec(seed=1), mlp_spec(seed=2)], xor_data)
    bt.set_hyper(1, lr=0.5)
    results = bt.run()
    assert results[0].history["lr"] == [0.1, 0.1] and results[1].history["lr"] == [0.5, 0.5]
    tr = Trainer(mlp_spec(seed=2, lr=0.5), xor_data)
    assert_same_run(results[1], bt.model_for(1), tr, tr.run())


def test_each_variant_gets_its_own_decision_boundary(xor_data):
    from engine.probes import Prober

    options = {"boundary": True, "grid_res": 16, "neurons": False, "weights": False, "confusion": False, "health": False}
    specs = [mlp_spec(seed=1, lr=0.01), mlp_spec(seed=2, lr=1.0)]
    snaps: list = []
    bt = BatchedTrainer(specs, xor_data, on_snapshot=snaps.append,
                        probes=[Prober(xor_data, "cross_entropy", options) for _ in specs])
    bt.run()
    grids = [s.extras["boundary"] for s in snaps[-1]]
    assert all(g.shape[:2] == (16, 16) for g in grids) and not np.allclose(grids[0], grids[1])
    # the same picture as a separate run's model gives
    tr = Trainer(specs[1], xor_data)
    tr.run()
    ref = Prober(xor_data, "cross_entropy", options)(tr.model, force=True)["boundary"]
    np.testing.assert_allclose(grids[1], ref, atol=1e-4)


@pytest.mark.parametrize("dataset, loss", [(DatasetSpec("xor", {"n_points": 100}), "bce"),
                                           (DatasetSpec("iris", {}), "mae"),
                                           (DatasetSpec("fit_sine", {}), "huber")])
def test_other_losses_and_regression_equal_separate_runs(dataset, loss):
    specs = [mlp_spec(optimizer="adam", lr=0.01, loss=loss), mlp_spec(optimizer="adam", lr=0.03, seed=3, loss=loss)]
    for s in specs:
        s.dataset = dataset
    data = datasets.load(dataset)
    results = (bt := BatchedTrainer(specs, data)).run()
    for i, spec in enumerate(specs):
        tr = Trainer(spec, data)
        # the eager trajectory, which the batched update follows: engine.fused adds up in another
        # order, and under MAE (a sign gradient) its run parts from eager by ~0.3 % in two epochs
        tr.use_fused = False
        ref = tr.run()
        assert_same_run(results[i], bt.model_for(i), tr, ref)
        np.testing.assert_allclose(results[i].history["val_mae"], ref.history["val_mae"], **TOL)


def test_recurrent_layers_train_batched_too():
    """torch.vmap cannot batch the fused RNN kernels: those layers run once per variant."""
    import dataclasses

    base = S.load(os.path.join(EXAMPLES, "char_lstm.json"))
    base.training.epochs, base.training.device = 1, "cpu"
    full = datasets.load(base.dataset)
    data = dataclasses.replace(full, x_train=full.x_train[:128], y_train=full.y_train[:128], x_val=full.x_val[:32],
                               y_val=full.y_val[:32])
    specs = [base, base.copy()]
    specs[1].training.seed, specs[1].training.lr = 4, 0.02
    results = (bt := BatchedTrainer(specs, data)).run()
    for i, spec in enumerate(specs):
        tr = Trainer(spec, data)
        assert_same_run(results[i], bt.model_for(i), tr, tr.run())


# ---- the table's numbers, and no torch for any of it ------------------------------------------------

def test_costs_summary_and_pareto_front():
    vs = expand(mlp_spec(), Sweep([Axis("layer.dense1.units", [2, 6])]))
    # Dense 2->u (+u biases) and Output u->2 (+2); MACs: 2u + 2u and one per activation value (u)
    assert [v.params for v in vs] == [2 * 2 + 2 + 2 * 2 + 2, 2 * 6 + 6 + 6 * 2 + 2]
    assert [v.macs for v in vs] == [2 * 2 + 2 + 2 * 2, 2 * 6 + 6 + 6 * 2]
    from engine.variants import pareto_front, summarize
    s = summarize({"val_loss": [0.5, 0.3, 0.4, math.nan], "val_acc": [0.7, 0.8, 0.9, math.nan]})
    assert s == {"best_val_loss": 0.3, "best_val_acc": 0.9, "best_epoch": 2.0, "epochs": 4.0}
    assert math.isnan(summarize({})["best_val_loss"])
    # (cost, error): (20, .3) is beaten by nothing; (30, .3) by (20, .3); (40, .1) is the cheapest with that error
    assert pareto_front([(10, 0.5), (20, 0.3), (30, 0.3), (5, 0.9), (40, 0.1), (50, math.nan)]) == \
        [True, True, False, True, True, False]


def test_sweeps_expand_without_torch():
    from tests.test_architecture import _run_blocked

    body = """
from engine import spec as S, variants as V
b = S.load("assets/examples/xor.json")
vs = V.expand(b, V.Sweep([V.Axis("training.lr", [0.01, 0.1]), V.Axis("layer.act1.function", ["tanh", "relu"])]))
assert len(vs) == 4 and V.batch_groups(vs) == [[0, 2], [1, 3]] and vs[3].macs > 0
print("SWEPT")
"""
    r = _run_blocked(["torch", "PySide6"], body)
    assert r.returncode == 0 and "SWEPT" in r.stdout, r.stderr


def test_a_comparison_trains_as_one_trainer_per_batch_group(xor_data):
    from engine.batched import compare_trainers

    base = mlp_spec(epochs=1)
    vs = expand(base, Sweep([Axis("layer.dense1.units", [3, 5]), Axis("training.lr", [0.05, 0.2])]))
    got: dict[int, list] = {}
    runs = compare_trainers(vs, xor_data, on_snapshot=lambda i, s: got.setdefault(i, []).append(s))
    assert [g for g, _ in runs] == [[0, 1], [2, 3]]
    threads = [threading.Thread(target=tr.run) for _, tr in runs]  # as the worker would: interleaved
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(got) == [0, 1, 2, 3] and all(got[i][-1].state == "finished" for i in got)
    for i in (0, 3):
        tr = Trainer(vs[i].spec, xor_data)
        ref = tr.run()
        np.testing.assert_allclose(got[i][-1].history["val_loss"], ref.history["val_loss"], **TOL)
