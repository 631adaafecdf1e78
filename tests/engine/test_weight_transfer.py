"""Keeping trained weights over a structural edit (engine.weight_transfer): numpy only, no torch.

Expected arrays are written out by hand (concatenations of the old trained rows/columns and the
fresh init's remaining ones), not with the module's own slicing."""
import numpy as np

from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec
from engine.weight_transfer import layer_of, transfer

RNG = np.random.default_rng(0)


def chain(*layers) -> Spec:
    """Input -> layers... ; each layer is (id, kind, params)."""
    spec = Spec(name="t", dataset=DatasetSpec("xor", {}))
    items = [("input1", "Input", {}), *layers]
    spec.layers = [LayerSpec(lid, kind, dict(p)) for lid, kind, p in items]
    spec.edges = [EdgeSpec(a[0], b[0]) for a, b in zip(items, items[1:], strict=False)]
    return spec


def arrays(**shapes) -> dict[str, np.ndarray]:
    """{"dense1.weight": (4, 2)} -> {"layers.dense1.weight": random float32 array of that shape}."""
    return {f"layers.{k.replace('__', '.')}": RNG.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def dense_state(*widths, n_in=2, n_out=2, names=None):
    """A Dense chain's state: hidden layers of ``widths`` units, then output1."""
    names = names or [f"dense{i + 1}" for i in range(len(widths))]
    shapes, prev = {}, n_in
    for name, w in zip(names, widths, strict=True):
        shapes[f"{name}__weight"], shapes[f"{name}__bias"], prev = (w, prev), (w,), w
    shapes["output1__weight"], shapes["output1__bias"] = (n_out, prev), (n_out,)
    return arrays(**shapes)


def test_keys_name_their_layer():
    assert layer_of("layers.dense1.weight") == "dense1"
    assert layer_of("layers.out1.0.weight") == "out1"  # a reconstruction head is a Sequential
    assert layer_of("layers.bn1.num_batches_tracked") == "bn1"


def test_activation_change_keeps_every_weight():
    old_spec = chain(("dense1", "Dense", {"units": 4}), ("act1", "Activation", {"function": "tanh"}),
                     ("output1", "Output", {}))
    new_spec = chain(("dense1", "Dense", {"units": 4}), ("act1", "Activation", {"function": "relu"}),
                     ("output1", "Output", {}))
    old, fresh = dense_state(4), dense_state(4)
    state, report = transfer(old, fresh, old_spec, new_spec)
    assert set(state) == set(fresh)
    for k in old:
        assert np.array_equal(state[k], old[k]) and not np.array_equal(state[k], fresh[k]), k
        assert state[k].dtype == np.float32
    assert report.ids("kept") == ["dense1", "output1"]
    assert report.summary() == "Kept the weights of dense1, output1; optimiser restarted"


def test_widening_a_dense_keeps_the_old_units_and_the_next_layer_keeps_the_old_inputs():
    old_spec = chain(("dense1", "Dense", {"units": 4}), ("output1", "Output", {}))
    new_spec = chain(("dense1", "Dense", {"units": 8}), ("output1", "Output", {}))
    old, fresh = dense_state(4), dense_state(8)
    state, report = transfer(old, fresh, old_spec, new_spec)

    w_old, w_fresh = old["layers.dense1.weight"], fresh["layers.dense1.weight"]  # (4, 2), (8, 2)
    assert np.array_equal(state["layers.dense1.weight"], np.concatenate([w_old, w_fresh[4:]], axis=0))
    b_old, b_fresh = old["layers.dense1.bias"], fresh["layers.dense1.bias"]
    assert np.array_equal(state["layers.dense1.bias"], np.concatenate([b_old, b_fresh[4:]]))
    # output1 (2, 4) -> (2, 8): the columns reading the old units are the trained ones
    o_old, o_fresh = old["layers.output1.weight"], fresh["layers.output1.weight"]
    assert np.array_equal(state["layers.output1.weight"], np.concatenate([o_old, o_fresh[:, 4:]], axis=1))
    assert np.array_equal(state["layers.output1.bias"], old["layers.output1.bias"])

    assert report.ids("partly") == ["dense1", "output1"]
    text = report.summary()
    assert "dense1 widened 4 -> 8 (old units kept)" in text
    assert "output1 inputs 4 -> 8 (old inputs kept)" in text
    assert text.endswith("optimiser restarted")


def test_narrowing_keeps_the_first_units():
    old_spec = chain(("dense1", "Dense", {"units": 8}), ("output1", "Output", {}))
    new_spec = chain(("dense1", "Dense", {"units": 3}), ("output1", "Output", {}))
    old, fresh = dense_state(8), dense_state(3)
    state, report = transfer(old, fresh, old_spec, new_spec)
    assert np.array_equal(state["layers.dense1.weight"], old["layers.dense1.weight"][0:3, :])
    assert np.array_equal(state["layers.output1.weight"], old["layers.output1.weight"][:, 0:3])
    assert "dense1 narrowed 8 -> 3 (first 3 units kept)" in report.summary()


def test_adding_a_layer_keeps_the_others_and_the_new_one_starts_from_its_init():
    old_spec = chain(("dense1", "Dense", {"units": 4}), ("output1", "Output", {}))
    new_spec = chain(("dense1", "Dense", {"units": 4}), ("dense2", "Dense", {"units": 4}), ("output1", "Output", {}))
    old, fresh = dense_state(4), dense_state(4, 4)
    state, report = transfer(old, fresh, old_spec, new_spec)
    for k in old:
        assert np.array_equal(state[k], old[k]), k
    for k in ("layers.dense2.weight", "layers.dense2.bias"):
        assert np.array_equal(state[k], fresh[k]), k
    assert report.ids("kept") == ["dense1", "output1"] and report.ids("new") == ["dense2"]
    assert report.summary() == "Kept the weights of dense1, output1; new: dense2; optimiser restarted"


def test_removing_a_layer_keeps_the_others():
    old_spec = chain(("dense1", "Dense", {"units": 4}), ("dense2", "Dense", {"units": 4}), ("output1", "Output", {}))
    new_spec = chain(("dense1", "Dense", {"units": 4}), ("output1", "Output", {}))
    old, fresh = dense_state(4, 4), dense_state(4)
    state, report = transfer(old, fresh, old_spec, new_spec)
    assert set(state) == set(fresh), "the removed layer's arrays are not carried"
    for k in fresh:
        assert np.array_equal(state[k], old[k]), k
    assert report.removed == ["dense2"]
    assert "removed: dense2" in report.summary()


def test_conv_channels_grow_batchnorm_follows_and_a_new_kernel_size_starts_fresh():
    def spec(filters, kernel2):
        return chain(("conv1", "Conv2d", {"filters": filters, "kernel": 3}), ("bn1", "BatchNorm", {}),
                     ("conv2", "Conv2d", {"filters": 4, "kernel": kernel2}))

    old = arrays(conv1__weight=(8, 1, 3, 3), conv1__bias=(8,), bn1__weight=(8,), bn1__bias=(8,),
                 bn1__running_mean=(8,), bn1__running_var=(8,), conv2__weight=(4, 8, 3, 3), conv2__bias=(4,))
    old["layers.bn1.num_batches_tracked"] = np.array(120, dtype=np.int64)
    fresh = arrays(conv1__weight=(16, 1, 3, 3), conv1__bias=(16,), bn1__weight=(16,), bn1__bias=(16,),
                   bn1__running_mean=(16,), bn1__running_var=(16,), conv2__weight=(4, 16, 3, 3), conv2__bias=(4,))
    fresh["layers.bn1.num_batches_tracked"] = np.array(0, dtype=np.int64)
    state, report = transfer(old, fresh, spec(8, 3), spec(16, 3))

    c_old, c_fresh = old["layers.conv1.weight"], fresh["layers.conv1.weight"]
    assert np.array_equal(state["layers.conv1.weight"], np.concatenate([c_old, c_fresh[8:]], axis=0))
    for p in ("weight", "bias", "running_mean", "running_var"):
        k = f"layers.bn1.{p}"
        assert np.array_equal(state[k], np.concatenate([old[k], fresh[k][8:]])), k
    assert int(state["layers.bn1.num_batches_tracked"]) == 120
    d_old, d_fresh = old["layers.conv2.weight"], fresh["layers.conv2.weight"]
    assert np.array_equal(state["layers.conv2.weight"], np.concatenate([d_old, d_fresh[:, 8:]], axis=1))
    text = report.summary()
    assert "conv1 filters 8 -> 16 (old filters kept)" in text and "bn1 channels 8 -> 16" in text
    assert "conv2 input channels 8 -> 16 (old input channels kept)" in text

    # a 3x3 kernel cannot become a 5x5 one: that weight starts fresh, the unchanged bias stays
    fresh5 = dict(old, **arrays(conv2__weight=(4, 8, 5, 5)))
    state, report = transfer(old, fresh5, spec(8, 3), spec(8, 5))
    assert np.array_equal(state["layers.conv2.weight"], fresh5["layers.conv2.weight"])
    assert np.array_equal(state["layers.conv2.bias"], old["layers.conv2.bias"])
    assert report.ids("partly") == ["conv2"] and "weight fresh" in report.summary()


def test_a_resized_recurrent_layer_and_a_changed_kind_start_fresh():
    old_spec = chain(("rnn1", "LSTM", {"units": 4}), ("dense1", "Dense", {"units": 4}))
    new_spec = chain(("rnn1", "LSTM", {"units": 8}), ("dense1", "Conv2d", {"filters": 4}))
    old = arrays(rnn1__weight_ih_l0=(16, 3), dense1__weight=(4, 4))
    fresh = arrays(rnn1__weight_ih_l0=(32, 3), dense1__weight=(4, 4))
    state, report = transfer(old, fresh, old_spec, new_spec)
    # LSTM rows are four interleaved gates: a top block would mix them up
    assert np.array_equal(state["layers.rnn1.weight_ih_l0"], fresh["layers.rnn1.weight_ih_l0"])
    assert np.array_equal(state["layers.dense1.weight"], fresh["layers.dense1.weight"]), "another kind, same id"
    assert report.ids("fresh") == ["rnn1", "dense1"]
    assert "started fresh (shape changed): rnn1, dense1" in report.summary()


def test_without_the_designs_only_identical_shapes_are_kept():
    old, fresh = dense_state(4), dense_state(8)
    state, report = transfer(old, fresh)
    assert np.array_equal(state["layers.dense1.weight"], fresh["layers.dense1.weight"])
    assert np.array_equal(state["layers.output1.bias"], old["layers.output1.bias"])
    assert report.summary().startswith("Kept no layer's weights whole")
