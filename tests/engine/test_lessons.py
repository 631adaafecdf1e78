"""Every lesson's claims hold on a real run (a false claim is a bug in the lesson), the claims
judge histories the way the GUI has them, and the headless command works."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine import lessons as LS
from engine import spec as S
from engine import validation

LESSONS = LS.all_lessons()


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_there_are_at_least_16_lessons_in_every_group():
    assert len(LESSONS) >= 16
    assert {les.group for les in LESSONS} == set(LS.GROUPS)
    assert len({les.name for les in LESSONS}) == len(LESSONS)


@pytest.mark.parametrize("les", LESSONS, ids=[les.name for les in LESSONS])
def test_every_variant_is_a_valid_design_that_survives_a_save(les):
    for name in les.variants:
        spec = les.variant_spec(name)
        assert not validation.errors(validation.validate(spec)), (name, validation.validate(spec))
        assert les.matching_variant(S.loads(S.dumps(spec))) == name
    assert les.steps and les.text and les.claims


@pytest.mark.parametrize("les", LESSONS, ids=[les.name for les in LESSONS])
def test_the_lesson_claim_holds_on_a_real_run(les):
    rep = LS.check_lesson(les)
    assert rep.ok, "\n".join(v.text for v in rep.verdicts)
    assert all(v.text.startswith("as expected") for v in rep.verdicts)


def _h(loss, acc=None, val=None, state="finished"):
    loss = np.asarray(loss, float)
    acc = np.full(len(loss), 0.5) if acc is None else np.asarray(acc, float)
    return {"train_loss": loss, "val_loss": loss, "train_acc": acc, "val_acc": acc if val is None else np.asarray(val, float),
            "lr": np.full(len(loss), 0.1), "epoch": np.arange(1, len(loss) + 1), "state": state, "training": {}}


def test_claims_can_fail():
    """The checks are not tautologies: runs that do not show the phenomenon are judged false."""
    flat = _h([0.7] * 10)
    smooth = _h(np.linspace(0.7, 0.1, 10))
    assert not LS.c_diverges_or_oscillates({"r": smooth}, "r")[0]
    assert LS.c_diverges_or_oscillates({"r": _h([0.7, 0.8], state="diverged")}, "r")[0]
    assert not LS.c_converges({"r": flat}, "r")[0] and LS.c_converges({"r": smooth}, "r")[0]
    assert not LS.c_noisier({"a": smooth, "b": smooth}, "a", "b")[0]
    assert not LS.c_faster({"a": flat, "b": smooth}, "a", "b", 0.3)[0]
    assert LS.c_faster({"a": smooth, "b": flat}, "a", "b", 0.3)[0]
    assert not LS.c_gap_at_least({"r": _h([0.5] * 5, [1.0] * 5, [0.95] * 5)}, "r", 0.15)[0]


def test_a_missing_run_says_which_step_to_do_and_engine_claims_defer_to_the_suite():
    les = LS.find("learning_rate")
    verdicts = LS.judge(les, {"high": _h([5, 9, 3, 12, 4, 8])}, with_engine=False)
    assert verdicts[0].ok and [v.ok for v in verdicts[1:]] == [None, None]
    assert "lr 0.1" in verdicts[1].text
    soft = LS.judge(LS.find("softmax_cross_entropy"), {}, with_engine=False)
    assert soft[0].ok is None and "test suite" in soft[0].text


def test_softmax_numbers_come_from_the_engine_loss():
    ok, text = LS.c_softmax_numbers({})
    assert ok and "0.842, 0.042, 0.002, 0.114" in text
    p = np.exp([5, 2, -1, 3]) / np.exp([5, 2, -1, 3]).sum()  # independent: numpy
    assert np.allclose(np.round(p, 3), [0.842, 0.042, 0.002, 0.114])


def test_scaling_none_keeps_raw_features_and_old_files_still_standardise():
    from engine import datasets

    raw = datasets.load(S.DatasetSpec("gaussians", {"x2_scale": 100.0, "scaling": "none"}))
    std = datasets.load(S.DatasetSpec("gaussians", {"x2_scale": 100.0}))
    assert raw.x_train[:, 1].std() > 30 * raw.x_train[:, 0].std()
    assert np.allclose(std.x_train.std(0), 1, atol=1e-3) and np.allclose(std.x_train.mean(0), 0, atol=1e-3)
    mm = datasets.load(S.DatasetSpec("iris", {"scaling": "minmax"}))
    assert np.allclose(mm.x_train.min(0), 0) and np.allclose(mm.x_train.max(0), 1)
    with pytest.raises(ValueError, match="scaling"):
        datasets.load(S.DatasetSpec("iris", {"scaling": "log"}))


def test_cli_lists_and_checks_a_lesson():
    r = subprocess.run([sys.executable, "main.py", "lesson", "--list"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "xor_hidden_layer" in r.stdout and "convolution:" in r.stdout
    r = subprocess.run([sys.executable, "main.py", "lesson", "momentum", "--check", "--json"], capture_output=True,
                       text=True, timeout=300)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"] and out["claims"][0]["ok"]
    r = subprocess.run([sys.executable, "main.py", "lesson", "nonsense", "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--list" in r.stderr
