"""The whole system against its own validator, over random designs (hypothesis).

Every design that ``validate()`` accepts must build, train, answer every probe the views can
ask for, and export to every format; every design it rejects must fail to build with exactly
its listed problems. A few examples run in the normal suite; ``NP_SLOW=N`` runs N of them
(``NP_SLOW=3000 pytest tests/engine/test_whole_system.py --timeout=0``).
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import datasets, export, layers
from engine.build import build
from engine.probes import Prober
from engine.saliency import SALIENCY_METHODS
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, SpecError
from engine.trainer import Trainer
from engine.validation import errors, validate

SLOW = int(os.environ.get("NP_SLOW") or 0)
SETTINGS = settings(max_examples=SLOW or 12, deadline=None, derandomize=not SLOW,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DATASETS = [("xor", {"n_points": 48}), ("iris", {}), ("shapes", {"n_per_class": 10, "size": 16}),
            ("gaussians", {"n_points": 48, "classes": 3})]
# bounds that keep one example to a fraction of a second; the schema's own range is used otherwise
CAPS = {"units": 12, "filters": 6, "kernel": 5, "stride": 3}
HIDDEN_KINDS = sorted(k for k, lk in layers.REGISTRY.items() if k not in ("Input", "Output") and lk.max_inputs == 1)
MERGE_KINDS = sorted(k for k, lk in layers.REGISTRY.items() if lk.max_inputs > 1)


def param_value(p: layers.Param):
    if p.type == "bool":
        return st.booleans()
    if p.type == "choice":
        return st.sampled_from(p.choices)
    hi = min(p.max, CAPS.get(p.name, p.max)) if p.max is not None else CAPS.get(p.name, 10)
    lo = p.min if p.min is not None else 0
    if p.type == "int":
        return st.integers(int(lo), int(max(lo, hi)))
    return st.floats(float(lo), float(max(lo, hi)), allow_nan=False)


@st.composite
def designs(draw) -> Spec:
    kind, dparams = draw(st.sampled_from(DATASETS))
    spec = Spec(name="random", dataset=DatasetSpec(kind, dict(dparams)))
    spec.layers = [LayerSpec("input1", "Input")]
    ids = ["input1"]
    edges = []
    for i in range(draw(st.integers(0, 5))):
        if len(ids) > 1 and draw(st.integers(0, 5)) == 0:  # now and then a join with an earlier layer
            k = draw(st.sampled_from(MERGE_KINDS))
            other = draw(st.sampled_from(ids[:-1]))
            lid = f"{k.lower()}{i}"
            edges += [EdgeSpec(ids[-1], lid), EdgeSpec(other, lid)]
        else:
            k = draw(st.sampled_from(HIDDEN_KINDS))
            lid = f"{k.lower()}{i}"
            edges.append(EdgeSpec(ids[-1], lid))
        params = {p.name: draw(param_value(p)) for p in layers.REGISTRY[k].params if draw(st.booleans())}
        spec.layers.append(LayerSpec(lid, k, params))
        ids.append(lid)
    spec.layers.append(LayerSpec("output1", "Output"))
    edges.append(EdgeSpec(ids[-1], "output1"))
    spec.edges = edges
    t = spec.training
    t.loss = draw(st.sampled_from(["cross_entropy", "bce", "mse"]))
    t.optimizer = draw(st.sampled_from(["sgd", "adam", "adamw", "rmsprop", "adagrad"]))
    t.lr = draw(st.sampled_from([0.001, 0.01, 0.1]))
    t.batch_size = draw(st.sampled_from([1, 7, 32]))
    t.epochs = 1
    t.device = "cpu"
    return spec


def probe_options(spec: Spec, method: str) -> dict:
    return {"boundary": True, "grid_res": 12, "neurons": True, "neuron_res": 8, "weights": True, "filters": True,
            "confusion": True, "feature_sample": 0, "saliency": {"method": method, "target": None, "layer": None}}


@SETTINGS
@given(spec=designs())
def test_what_validate_accepts_trains_probes_and_exports_and_what_it_rejects_fails_with_its_problems(spec, tmp_path_factory):
    info = datasets.describe(spec.dataset)
    problems = errors(validate(spec, info))
    if problems:
        with pytest.raises(SpecError) as exc:
            build(spec, info)
        assert sorted(map(str, exc.value.problems)) == sorted(map(str, problems)), "build fails with exactly its problems"
        return
    data = datasets.load(spec.dataset)
    model = build(spec, data.info)
    trainer = Trainer(spec, data, model=model, device="cpu", epochs=1)
    result = trainer.run()
    assert result.steps >= 1
    assert trainer.ended in ("finished", "diverged")  # a random LR may diverge: that is a message, not an error
    has_conv = any(lay.kind == "Conv2d" for lay in spec.layers)
    for method in SALIENCY_METHODS:
        extras = Prober(data, spec.training.loss, probe_options(spec, method))(trainer.model, force=True)
        unexpected = {part: text for part, text in extras["problems"].items()
                      if not (part == "saliency" and method == "gradcam" and not has_conv)}
        assert not unexpected, unexpected
        if data.info.is_image or method != "gradcam":
            assert "saliency" in extras or (method == "gradcam" and not has_conv)
        if len(data.info.input_shape) == 1:
            assert extras["boundary"].shape[:2] == (12, 12)
        assert np.isfinite(extras["confusion"]["matrix"]).all()
    folder = tmp_path_factory.mktemp("export")
    for ext in export.FORMATS:
        path = folder / f"model{ext}"
        export.export(trainer.model, spec, path)
        assert path.stat().st_size > 0, ext
