"""Autoencoders, VAEs and GANs in the engine, checked against formulas written out here."""
import json
import math
import os

import numpy as np
import pytest
import torch

from engine import layers as L
from engine import spec as S
from engine import validation as V
from engine.autoencoder import decode, encode
from engine.datasets import describe
from engine.gan import GanTrainer, build_gan, d_loss_fn, g_loss_fn, ring_error
from engine.modules import VAESample
from engine.tasks import load_data, make_trainer
from tests.conftest import EXAMPLES


def example(name: str, epochs: int | None = None) -> S.Spec:
    spec = S.load(os.path.join(EXAMPLES, f"{name}.json"))
    spec.training.device = "cpu"
    if epochs is not None:
        spec.training.epochs = epochs
    return spec


# ---- the VAE's sampling layer -------------------------------------------------------------------

def test_vae_kl_term_equals_the_closed_form():
    torch.manual_seed(0)
    x = torch.randn(16, 6) * 1.5
    m = VAESample().train()
    m(x)
    mu, logvar = x[:, :3].numpy().astype(np.float64), x[:, 3:].numpy().astype(np.float64)
    sigma2 = np.exp(logvar)
    closed = np.mean(np.sum(0.5 * (mu ** 2 + sigma2 - np.log(sigma2) - 1.0), axis=1))
    assert float(m.kl) == pytest.approx(closed, rel=1e-5)


def test_reparameterisation_gradient_flows_to_mean_and_log_variance():
    torch.manual_seed(1)
    x = torch.randn(5, 4, requires_grad=True)
    m = VAESample().train()
    z = m(x)
    z.sum().backward()
    mu, logvar = x.detach()[:, :2], x.detach()[:, 2:]
    sigma = torch.exp(0.5 * logvar)
    eps = (z.detach() - mu) / sigma  # z = mu + sigma * eps
    # dz/dmu = 1, dz/dlogvar = 0.5 * sigma * eps
    assert torch.allclose(x.grad[:, :2], torch.ones(5, 2))
    assert torch.allclose(x.grad[:, 2:], 0.5 * sigma * eps, atol=1e-6)
    assert eps.std() > 0.3, "the sample is random, not the mean"


def test_vae_sample_gives_the_mean_when_evaluating():
    x = torch.randn(3, 4)
    assert torch.equal(VAESample().eval()(x), x[:, :2])


# ---- shapes --------------------------------------------------------------------------------------

def test_autoencoder_output_takes_the_input_shape_and_counts_match_torch():
    spec = example("autoencoder_digits")
    rep = L.infer(spec, describe(spec.dataset))
    assert rep.ok and rep.shapes["output1"] == (1, 8, 8) == rep.shapes["input1"]
    model = make_trainer(spec, load_data(spec))[0].model
    for lid, count in rep.counts.items():
        if lid in model.layers:
            assert count == sum(p.numel() for p in model.layers[lid].parameters()), lid


def test_conv_decoder_with_reshape_and_upsample():
    spec = example("autoencoder_digits")
    spec.layers = [S.LayerSpec("input1", "Input"), S.LayerSpec("conv1", "Conv2d", {"filters": 4}),
                   S.LayerSpec("pool1", "MaxPool2d"), S.LayerSpec("flat", "Flatten"),
                   S.LayerSpec("code", "Dense", {"units": 64}), S.LayerSpec("re", "Reshape", {"channels": 4, "height": 4,
                                                                                              "width": 4}),
                   S.LayerSpec("up", "Upsample", {"scale": 2}), S.LayerSpec("conv2", "Conv2d", {"filters": 1}),
                   S.LayerSpec("output1", "Output")]
    spec.edges = [S.EdgeSpec(a.id, b.id) for a, b in zip(spec.layers, spec.layers[1:], strict=False)]
    spec.generative.bottleneck = "code"
    rep = L.infer(spec, describe(spec.dataset))
    assert rep.ok, rep.problems
    assert rep.shapes["re"] == (4, 4, 4) and rep.shapes["up"] == (4, 8, 8) and rep.shapes["output1"] == (1, 8, 8)
    assert rep.counts["output1"] == 0  # the image itself is the reconstruction
    tr, _ = make_trainer(spec, load_data(spec))
    out = tr.model(tr._xv[:3])
    assert out.shape == (3, 1, 8, 8)


def test_shape_mistakes_get_messages_naming_the_fix():
    spec = example("vae_digits")
    spec.layer("dense2").params["units"] = 5
    problems = V.validate(spec)
    assert any(p.where == "sample1" and "even number" in p.message for p in problems)
    spec = example("autoencoder_digits")
    spec.generative.bottleneck = "nope"
    assert any(p.where == "generative.bottleneck" for p in V.validate(spec))


def test_decoder_from_the_bottleneck_equals_the_whole_model():
    spec = example("autoencoder_digits")
    tr, _ = make_trainer(spec, load_data(spec))
    model = tr.model.eval()
    x = tr._xv[:10]
    with torch.no_grad():
        z = encode(model, "dense2", x)
        assert z.shape == (10, 8)
        assert torch.allclose(decode(model, "dense2", z), model(x), atol=1e-6)


def test_autoencoder_trainer_lowers_the_pixel_reconstruction_error():
    spec = example("autoencoder_digits", epochs=6)
    tr, _ = make_trainer(spec, load_data(spec))
    res = tr.run()
    mse = res.history["recon_mse"]
    assert len(mse) == 6 and mse[-1] < 0.75 * mse[0]
    # recon_mse is the pixel MSE, recomputed here by hand from the model's output
    with torch.no_grad():
        out = tr.model.eval()(tr._xv)
    raw = torch.as_tensor(tr.data.raw_x_val)
    by_hand = float(((out * tr._std + tr._mean - raw) ** 2).mean())
    assert mse[-1] == pytest.approx(by_hand, rel=1e-4)
    assert math.isnan(res.val_accuracy)


def test_vae_trainer_adds_beta_times_kl():
    spec = example("vae_digits", epochs=1)
    tr, _ = make_trainer(spec, load_data(spec))
    torch.manual_seed(3)
    xb = tr._x[:32]
    loss, _ = tr._forward_loss(xb, None)
    vae = next(m for m in tr.model.modules() if isinstance(m, VAESample))
    out_numel = 64
    torch.manual_seed(3)  # the same noise again, so the same sample
    out = tr.model(xb)
    target = (xb * tr._std + tr._mean).clamp(0, 1)
    p = torch.sigmoid(out)
    bce = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    assert float(loss.detach()) == pytest.approx(float((bce + spec.generative.beta * vae.kl / out_numel).detach()), rel=1e-4)


# ---- the format ---------------------------------------------------------------------------------

def test_version_1_files_load_identically():
    for name in ("xor", "digits_cnn", "residual_mlp"):
        path = os.path.join(EXAMPLES, f"{name}.json")
        raw = json.load(open(path, encoding="utf-8"))
        assert raw["version"] == 1
        spec = S.load(path)
        assert spec.generative is None
        # what the file says, field by field
        assert [(lay.id, lay.kind, lay.params) for lay in spec.layers] == \
            [(r["id"], r["kind"], r.get("params", {})) for r in raw["layers"]]
        assert [(e.src, e.dst) for e in spec.edges] == [(r["from"], r["to"]) for r in raw["edges"]]
        assert (spec.dataset.kind, spec.dataset.params) == (raw["dataset"]["kind"], raw["dataset"].get("params", {}))
        assert all(getattr(spec.training, k) == v for k, v in raw["training"].items())
        # saved again it is still version 1 (older apps open it), without a generative part, and reads back equal
        data = spec.to_dict()
        assert "generative" not in data and data["version"] == 1 and S.FORMAT_VERSION >= 2
        assert S.dumps(spec) == open(path, encoding="utf-8").read()
        assert S.spec_from_dict(data) == spec
        # a "generative" key in a version-1 file is ignored, as version 1 always did
        assert S.spec_from_dict(dict(raw, generative={"kind": "gan"})) == spec


def test_generative_part_round_trips_and_bad_values_are_named():
    spec = example("gan_ring")
    spec.generative.target, spec.generative.points = "drawn", [(0.1, 0.2), (0.5, -0.5)]
    back = S.loads(S.dumps(spec))
    assert back == spec and spec.to_dict()["version"] == 2
    raw = spec.to_dict()
    raw["generative"]["g_lr"] = "fast"
    raw["generative"]["target"] = "square"
    raw["generative"]["points"] = [[1, "a"]]
    with pytest.raises(S.SpecError) as err:
        S.spec_from_dict(raw)
    wheres = {p.where for p in err.value.problems}
    assert {"generative.g_lr", "generative.target", "generative.points"} <= wheres


# ---- GANs ---------------------------------------------------------------------------------------

def test_gan_losses_equal_the_bce_formula_written_out():
    torch.manual_seed(0)
    dr, df = torch.randn(64, 1) * 2, torch.randn(64, 1) * 2
    sig = lambda t: 1 / (1 + np.exp(-t.numpy().astype(np.float64)))  # noqa: E731
    d_expected = -np.mean(np.log(sig(dr))) - np.mean(np.log(1 - sig(df)))
    g_expected = -np.mean(np.log(sig(df)))
    assert float(d_loss_fn(dr, df)) == pytest.approx(d_expected, rel=1e-5)
    assert float(g_loss_fn(df)) == pytest.approx(g_expected, rel=1e-5)


def test_gan_design_has_two_checked_sub_networks():
    spec = example("gan_ring")
    rep = L.infer(spec, None)
    assert rep.ok, rep.problems
    assert rep.shapes["g_noise"] == (2,) and rep.shapes["g_out"] == (2,)
    assert rep.shapes["d_point"] == (2,) and rep.shapes["d_out"] == (1,)
    pair = build_gan(spec)
    assert sum(p.numel() for p in pair.parameters()) == rep.total_params
    # wiring the generator into the discriminator is an error that names the layer
    spec.edges.append(S.EdgeSpec("g_act2", "d_dense1"))
    problems = V.errors(V.validate(spec))
    assert any("both the generator and the discriminator" in p.message or "in the discriminator" in p.message
               for p in problems)


def test_gan_moves_its_samples_onto_the_ring():
    torch.set_num_threads(1)
    spec = example("gan_ring")  # the example as the CLI trains it: 40 epochs
    tr = GanTrainer(spec)
    before = ring_error(tr.generate())
    res = tr.run()
    # the stated bar, recomputed from generated points by hand: mean |r - R| < 0.15 R
    pts = tr.generate(torch.randn(2000, 2, generator=torch.Generator().manual_seed(5)))
    after = float(np.mean(np.abs(np.sqrt((pts ** 2).sum(1)) - 1.0)))
    assert after < 0.15 and after < 0.5 * before, (before, after)
    assert len(res.history["d_loss"]) == 40 and math.isnan(res.train_accuracy)


def test_gan_iteration_steps_each_side_with_its_own_optimiser():
    spec = example("gan_ring", epochs=1)
    spec.generative.d_steps, spec.generative.g_steps = 3, 2
    tr = GanTrainer(spec)
    tr.train_iteration()
    assert tr.d_opt.state[next(iter(tr.model.discriminator.parameters()))]["step"] == 3
    assert tr.g_opt.state[next(iter(tr.model.generator.parameters()))]["step"] == 2
    tr.close()  # the worker closes every run so; a GAN's once raised and killed the worker at exit


def test_gan_probe_heat_map_is_the_discriminator_probability():
    spec = example("gan_ring", epochs=1)
    tr, probe = make_trainer(spec, load_data(spec))
    ex = probe(tr, force=True)
    x0, x1, y0, y1 = ex["gan_extent"]
    res = ex["gan_heat"].shape[0]
    # grid[i, j] is (xs[j], ys[i]); check one corner and the middle against the discriminator itself
    pts = torch.tensor([[x0, y0], [x1, y1]], dtype=torch.float32)
    with torch.no_grad():
        p = torch.sigmoid(tr.model.discriminator.eval()(pts)).numpy()[:, 0]
    assert ex["gan_heat"][0, 0] == pytest.approx(p[0], abs=1e-5)
    assert ex["gan_heat"][res - 1, res - 1] == pytest.approx(p[1], abs=1e-5)
    assert ex["gan_fake"].shape == (500, 2) and ex["gan_arrows"].shape[1] == 4


def test_gan_export_holds_both_networks_and_onnx_is_the_generator(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from engine.export import export, load_weights

    spec = example("gan_ring", epochs=1)
    tr = GanTrainer(spec)
    export(tr.model, tr.spec, tmp_path / "g.safetensors")
    state, design = load_weights(tmp_path / "g.safetensors")
    assert any(k.startswith("generator.") for k in state) and any(k.startswith("discriminator.") for k in state)
    assert design.generative.is_gan
    export(tr.model, tr.spec, tmp_path / "g.onnx")
    z = np.random.default_rng(0).normal(size=(7, 2)).astype(np.float32)
    got = ort.InferenceSession(str(tmp_path / "g.onnx")).run(None, {"input": z})[0]
    with torch.no_grad():
        want = tr.model.generator.eval()(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_vae_onnx_export_is_the_deterministic_mean_path(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from engine.export import export

    spec = example("vae_digits", epochs=1)
    tr, _ = make_trainer(spec, load_data(spec))
    export(tr.model, tr.spec, tmp_path / "v.onnx")
    x = tr.data.x_val[:4]
    got = ort.InferenceSession(str(tmp_path / "v.onnx")).run(None, {"input": x})[0]
    with torch.no_grad():
        model = tr.model.eval()
        want = decode(model, "sample1", encode(model, "dense2", torch.from_numpy(x))[:, :2]).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
