"""The kernel lab reproduces every worked example of the course notes (LESSONS.md items 18-22)
exactly, and its numbers are torch's layers' numbers (checked against plain loops and nn modules)."""
import numpy as np
import pytest
import torch

from engine import kernel_lab as K
from engine import layers as L

NG = [[3, 0, 1, 2, 7, 4], [1, 5, 8, 9, 3, 1], [2, 7, 2, 5, 1, 3], [0, 1, 3, 1, 7, 8], [4, 2, 1, 6, 2, 8], [2, 4, 5, 2, 3, 9]]


def test_item_18_the_6x6_image_and_the_vertical_edge_kernel_give_the_4x4_map():
    r = K.compute(NG, [[1, 0, -1], [1, 0, -1], [1, 0, -1]], op="conv", stride=1, padding=0)
    assert r.output[0].tolist() == [[-5, -4, 0, 8], [-10, -2, 2, 3], [0, -2, -4, -7], [-3, -2, -3, -16]]
    assert r.out_size == (4, 4) and "floor((6 + 2*0 - 3) / 1) + 1 = 4" in r.formula


@pytest.mark.parametrize("i, k, p, s, o", [(4, 3, 0, 1, 2), (5, 4, 2, 1, 6), (5, 3, 1, 1, 5), (5, 3, 0, 2, 2)])
def test_item_20_output_sizes(i, k, p, s, o):
    r = K.compute(np.ones((i, i)), np.ones((k, k)), op="conv", stride=s, padding=p)
    assert r.out_size == (o, o)
    assert K.size_formula("conv", i, k, p, s)[0] == o
    assert r.formula.endswith(f"= {o}")


def test_item_20_six_5x5_filters_on_32x32x3_give_28x28x6_and_456_parameters():
    r = K.compute(np.random.default_rng(0).normal(size=(3, 32, 32)), np.ones((6, 3, 5, 5)), op="conv")
    assert r.output.shape == (6, 28, 28) and r.params == 456 == 6 * (5 * 5 * 3 + 1)
    # the same count the layer registry gives the palette's Conv2d
    assert L.REGISTRY["Conv2d"].count([(3, 32, 32)], (6, 28, 28), {"kernel": 5, "bias": True}) == 456


def test_item_21_pooling_halves_each_side_and_ceil_mode_keeps_the_odd_edge():
    x = [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]
    assert K.compute(x, op="maxpool", size=2, stride=2).output[0].tolist() == [[6, 8], [3, 4]]
    assert K.compute(x, op="avgpool", size=2, stride=2).output[0].tolist() == [[3.25, 5.25], [2, 2]]
    odd = np.arange(25).reshape(5, 5)
    assert K.compute(odd, op="maxpool", size=2, stride=2).output[0].tolist() == [[6, 8], [16, 18]]
    ceil = K.compute(odd, op="maxpool", size=2, stride=2, ceil_mode=True)
    assert ceil.output[0].tolist() == [[6, 8, 9], [16, 18, 19], [21, 23, 24]] and "ceil" in ceil.formula
    # average in ceil mode: the partial window averages only the cells it covers
    assert K.compute(odd, op="avgpool", size=2, stride=2, ceil_mode=True).output[0][2].tolist() == [20.5, 22.5, 24]


def test_item_22_transposed_convolution_scatters_and_adds_copies_of_the_kernel():
    x = np.array([[1.0, 2], [3, 4]])
    k = np.array([[1.0, 2], [3, 4]])
    for s in (1, 2, 3):
        r = K.compute(x, k, op="transposed", stride=s)
        o = (2 - 1) * s + 2
        want = np.zeros((o, o))
        for a in range(2):  # by hand: each input value pastes value * kernel at (a*s, b*s)
            for b in range(2):
                want[a * s:a * s + 2, b * s:b * s + 2] += x[a, b] * k
        assert r.out_size == (o, o) and np.array_equal(r.output[0], want)
        assert r.formula.endswith(f"= {o}")


def test_every_preset_matches_what_the_notes_expect():
    for name in K.PRESETS:
        res, p = K.run_preset(name)
        assert K.preset_matches(res, p), name


@pytest.mark.parametrize("name", list(K.KERNELS))
def test_classic_kernels_equal_plain_loops(name):
    x = np.random.default_rng(1).integers(0, 9, size=(7, 7)).astype(float)
    k = np.asarray(K.KERNELS[name], dtype=float)
    r = K.compute(x, k, op="conv", padding=1)
    xp = np.pad(x, 1)
    want = np.array([[np.sum(xp[i:i + 3, j:j + 3] * k) for j in range(7)] for i in range(7)])
    assert np.allclose(r.output[0], want, atol=1e-12)


def test_the_lab_computes_what_the_engine_layers_compute():
    """Same weights in the registry's torch modules give the lab's numbers (conv, pools, transposed)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 7, 7))
    k = rng.normal(size=(3, 2, 3, 3))
    conv = L.REGISTRY["Conv2d"].make([(2, 7, 7)], (3, 4, 4),
                                     {"filters": 3, "kernel": 3, "stride": 2, "padding": "1", "bias": False})
    conv = conv.double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(k))
        want = conv(torch.from_numpy(x)[None])[0].numpy()
    assert np.allclose(K.compute(x, k, op="conv", stride=2, padding=1).output, want)
    for kind, op in (("MaxPool2d", "maxpool"), ("AvgPool2d", "avgpool")):
        mod = L.REGISTRY[kind].make([(2, 7, 7)], (2, 4, 4), {"size": 2, "ceil_mode": True})
        want = mod(torch.from_numpy(x)[None])[0].numpy()
        assert np.allclose(K.compute(x, op=op, size=2, stride=2, ceil_mode=True).output, want)
    kt = rng.normal(size=(2, 4, 2, 2))
    de = L.REGISTRY["ConvTranspose2d"].make([(2, 7, 7)], (4, 14, 14), {"filters": 4, "kernel": 2, "stride": 2, "bias": False})
    de = de.double()
    with torch.no_grad():
        de.weight.copy_(torch.from_numpy(kt))
        want = de(torch.from_numpy(x)[None])[0].numpy()
    assert np.allclose(K.compute(x, kt, op="transposed", stride=2).output, want)


def test_explain_spells_out_the_number_torch_computed():
    r = K.compute(NG, K.KERNELS["vertical edge"])
    for row in range(4):
        for col in range(4):
            e = K.explain(NG, K.KERNELS["vertical edge"], op="conv", stride=1, pad=0, row=row, col=col)
            assert e["value"] == r.output[0, row, col] and len(e["cells"]) == 9
    e = K.explain(NG, K.KERNELS["vertical edge"], op="conv", stride=1, pad=0, row=0, col=0)
    assert e["text"] == "3*1 + 0*0 + 1*-1 + 1*1 + 5*0 + 8*-1 + 2*1 + 7*0 + 2*-1 = -5"
    x = [[1, 2], [3, 4]]
    r = K.compute(x, [[1, 1], [1, 1]], op="transposed")
    e = K.explain(x, [[1, 1], [1, 1]], op="transposed", stride=1, pad=0, row=1, col=1)
    assert e["value"] == r.output[0, 1, 1] == 10 and len(e["cells"]) == 4
    assert K.explain([[1, 5], [2, 3]], None, op="maxpool", stride=2, pad=0, row=0, col=0)["value"] == 5


@pytest.mark.parametrize("kwargs, words", [
    ({"x": [[1, 2], [3]], "kernel": [[1]]}, "input"),
    ({"x": np.ones((3, 3)), "kernel": np.ones((5, 5))}, "does not fit"),
    ({"x": np.ones((3, 3)), "kernel": np.ones((2, 3))}, "square"),
    ({"x": np.ones((2, 3, 3)), "kernel": np.ones((3, 3, 3))}, "channel"),
    ({"x": np.ones((3, 3)), "op": "maxpool", "size": 2, "padding": 2}, "half"),
    ({"x": np.ones((3, 3)), "kernel": np.ones((3, 3)), "op": "warp"}, "operation"),
    ({"x": np.ones((3, 3)), "kernel": np.ones((3, 3)), "padding": "lots"}, "padding"),
])
def test_bad_arguments_get_a_message_naming_the_field(kwargs, words):
    x = kwargs.pop("x")
    with pytest.raises(K.LabError, match=words):
        K.compute(x, **kwargs)


def test_same_padding_keeps_the_size_and_the_worker_answers_without_a_run():
    from engine import protocol as P
    from engine.worker import kernel_lab

    assert K.compute(np.ones((6, 6)), np.ones((3, 3)), padding="same").out_size == (6, 6)
    assert K.compute(np.ones((6, 6)), np.ones((4, 4)), padding="same").out_size == (6, 6)
    ev = kernel_lab(P.KernelLab(7, {"x": NG, "kernel": K.KERNELS["vertical edge"]}))
    assert ev.request_id == 7 and ev.output[0, 0, 0] == -5 and not ev.error
    bad = kernel_lab(P.KernelLab(8, {"x": NG, "kernel": [[1, 2]]}))
    assert bad.output is None and "kernel" in bad.error
