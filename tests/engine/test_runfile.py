"""Run files (engine.runfile + engine.run_state): a run saved and opened again goes on exactly as
an uninterrupted run with the same seed would have (the uninterrupted run is the reference), on
the fused numpy path and on the eager torch path; hostile or damaged files are refused with a
message that names the member and the fix (issue 15)."""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
import torch

from engine import datasets, run_state, runfile
from engine import spec as S
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, TrainingSpec
from engine.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XOR_JSON = os.path.join(ROOT, "assets", "examples", "xor.json")
CURVES = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def chain(layers, dataset=DatasetSpec("xor", {"n_points": 160, "val_fraction": 0.25, "seed": 1}), **training) -> Spec:
    lays = [LayerSpec("in1", "Input")] + [LayerSpec(f"l{i}", k, p) for i, (k, p) in enumerate(layers)]
    lays.append(LayerSpec("out1", "Output"))
    t = dict(optimizer="adam", lr=0.02, batch_size=16, epochs=5, seed=7, device="cpu")
    t.update(training)
    return Spec(name="t", dataset=dataset, layers=lays, training=TrainingSpec(**t),
                edges=[EdgeSpec(a.id, b.id) for a, b in zip(lays, lays[1:], strict=False)])


def uninterrupted(spec: Spec, data, fused: bool) -> dict:
    tr = Trainer(spec, data, device="cpu", max_rate=0)
    tr.use_fused = fused
    tr.run()
    return tr.history


def saved_after(spec: Spec, data, fused: bool, epochs: int, path, batch: int = 0) -> tuple[Trainer, int]:
    """Train ``epochs`` of the design's epochs and ``batch`` batches of the next, pause there (at
    batch 0: the order of that epoch already drawn, as a paused run in the app waits), take the
    state between two batches, as the worker does, and save it."""
    taken: dict = {}

    def pause_and_take():
        tr.pause()
        tr.call_soon(lambda: (taken.update(run_state.capture(tr)), tr.stop()))

    def on_snapshot(snap):  # every step reports (max_rate=0)
        if batch and snap.step == epochs * tr.steps_per_epoch + batch and not taken:
            pause_and_take()

    tr = Trainer(spec, data, device="cpu", max_rate=0, on_snapshot=on_snapshot)
    tr.use_fused = fused
    end_epoch = tr._end_epoch

    def end_and_pause(*a):
        end_epoch(*a)
        if tr.epoch == epochs and not batch:
            pause_and_take()

    tr._end_epoch = end_and_pause
    tr.run()
    assert tr.epoch == epochs and taken and taken["step"] == epochs * tr.steps_per_epoch + batch
    size = runfile.write_run(path, S.dumps(spec), taken, {"boundary": True, "dims": (0, 1)})
    return tr, size


def resumed(path, data, fused: bool) -> Trainer:
    """A fresh trainer from the file alone (as a new app process would make it), trained to the end."""
    rf = runfile.read_run(path)
    spec = S.loads(rf.spec_json)
    tr = Trainer(spec, data, device="cpu", max_rate=0)
    tr.use_fused = fused
    run_state.restore(tr, rf.state)
    tr.run()
    return tr


@pytest.mark.parametrize("batch", [0, 5], ids=["epoch-boundary", "mid-epoch"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused-numpy", "eager"])
def test_xor_example_continues_as_if_never_stopped(tmp_path, fused, batch):
    spec = S.load(XOR_JSON)
    spec.training.epochs = 6
    spec.training.device = "cpu"
    data = datasets.load(spec.dataset)
    reference = uninterrupted(spec, data, fused)
    first, _size = saved_after(spec, data, fused, 3, tmp_path / "xor.nprun", batch)
    assert (first._fused is not None) == fused  # the path under test really ran
    tr = resumed(tmp_path / "xor.nprun", data, fused)
    assert (tr._fused is not None) == fused
    assert tr.epoch == 6 and tr.history["epoch"] == reference["epoch"]
    for k in CURVES:
        np.testing.assert_allclose(tr.history[k], reference[k], rtol=1e-5, atol=1e-6, err_msg=k)
    ref = Trainer(spec, data, device="cpu", max_rate=0)
    ref.use_fused = fused
    ref.run()
    for k, v in ref.model.state_dict().items():
        np.testing.assert_allclose(tr.model.state_dict()[k].numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("training", [
    dict(optimizer="sgd", momentum=0.9, nesterov=True, lr=0.05, lr_schedule="cosine", batch_size=7),
    dict(optimizer="adamw", weight_decay=0.05, lr=0.03, lr_schedule="step", step_size=2, gamma=0.5),
], ids=["sgd-nesterov-cosine", "adamw-step-schedule"])
def test_dropout_and_schedules_continue_exactly(tmp_path, training):
    """Dropout draws from torch's global generator and the schedule counts epochs: both come back."""
    spec = chain([("Dense", {"units": 8}), ("Activation", {"function": "relu"}), ("Dropout", {"rate": 0.3}),
                  ("Dense", {"units": 6}), ("Activation", {"function": "tanh"})], **training)
    data = datasets.load(spec.dataset)
    reference = uninterrupted(spec, data, fused=True)  # Dropout > 0 keeps it eager either way
    saved_after(spec, data, True, 2, tmp_path / "d.nprun", batch=3)  # half-way through epoch 3
    torch.manual_seed(12345)  # another run in the same worker moved the global generator meanwhile
    tr = resumed(tmp_path / "d.nprun", data, True)
    assert tr._fused is None
    for k in CURVES:
        np.testing.assert_allclose(tr.history[k], reference[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_file_holds_what_the_window_shows(tmp_path):
    spec = S.load(XOR_JSON)
    spec.training.epochs = 4
    data = datasets.load(spec.dataset)
    tr, size = saved_after(spec, data, True, 2, tmp_path / "x.nprun")
    rf = runfile.read_run(tmp_path / "x.nprun")
    assert S.loads(rf.spec_json).to_dict() == spec.to_dict()
    assert rf.epoch == 2 and rf.state["step"] == 2 * tr.steps_per_epoch
    assert rf.view_options == {"boundary": True, "dims": [0, 1]}
    np.testing.assert_array_equal(rf.state["history"]["train_loss"], np.asarray(tr.history["train_loss"][:2]))
    with zipfile.ZipFile(tmp_path / "x.nprun") as zf:
        names = set(zf.namelist())
        assert not any(n.endswith((".pt", ".pkl", ".pickle")) for n in names)
        for info in zf.infolist():  # no pickle opcode stream anywhere (protocol 2+ starts with 0x80)
            assert not zf.read(info).startswith(b"\x80")
    assert names == set(runfile.ALWAYS + runfile.WITH_RUN)
    assert size == os.path.getsize(tmp_path / "x.nprun")


def test_design_only_file_round_trips(tmp_path):
    spec = S.load(XOR_JSON)
    runfile.write_run(tmp_path / "d.nprun", S.dumps(spec))
    rf = runfile.read_run(tmp_path / "d.nprun")
    assert rf.state is None and rf.epoch == 0 and S.loads(rf.spec_json).name == spec.name


# ---- hostile and damaged files (issue 15) ---------------------------------------------------------

def _good_members(tmp_path) -> dict[str, bytes]:
    spec = S.load(XOR_JSON)
    spec.training.epochs = 2
    data = datasets.load(spec.dataset)
    saved_after(spec, data, True, 1, tmp_path / "good.nprun")
    with zipfile.ZipFile(tmp_path / "good.nprun") as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return _good_members(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize("name", ["../evil.json", "/etc/evil.json", "a/../../evil.json", "C:/evil.json",
                                  "..\\evil.json"])
def test_member_escaping_the_folder_is_refused(tmp_path, good, name):
    path = _zip(tmp_path / "evil.nprun", {**good, name: b"{}"})
    with pytest.raises(runfile.RunFileError, match="outside the run's folder") as err:
        runfile.read_run(path)
    assert repr(name) in str(err.value)


def test_unknown_member_is_named(tmp_path, good):
    path = _zip(tmp_path / "u.nprun", {**good, "payload.pkl": b"x"})
    with pytest.raises(runfile.RunFileError, match=r"unknown member 'payload.pkl'.*newer version"):
        runfile.read_run(path)


@pytest.mark.parametrize("missing", ["design.json", "optimizer.safetensors"])
def test_missing_member_is_named(tmp_path, good, missing):
    path = _zip(tmp_path / "m.nprun", {k: v for k, v in good.items() if k != missing})
    with pytest.raises(runfile.RunFileError, match=f"member '{missing}' is missing.*older copy"):
        runfile.read_run(path)


def test_archive_bigger_than_the_limit_by_its_headers(tmp_path, good):
    bomb = b"\0" * (4 << 20)  # 4 MB of zeros deflate to a few KB
    path = _zip(tmp_path / "b.nprun", {**good, "views.json": b"{}" + bomb})
    assert os.path.getsize(path) < 200_000
    with pytest.raises(runfile.RunFileError, match="more than the limit"):
        runfile.read_run(path, limit=1 << 20)


def test_lying_header_is_caught_while_reading(tmp_path, good):
    """The central directory claims a small size; the member really inflates to 4 MB."""
    path = _zip(tmp_path / "lie.nprun", {**good, "views.json": b"\0" * (4 << 20)})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("views.json")
    # patch the uncompressed size in the local header (offset 22) and the central directory entry
    local = info.header_offset
    data[local + 22:local + 26] = (100).to_bytes(4, "little")
    at = data.find(b"views.json")
    while at != -1:
        if data[at - 46:at - 42] == b"PK\x01\x02":  # this is the central directory's entry
            data[at - 46 + 24:at - 46 + 28] = (100).to_bytes(4, "little")
        at = data.find(b"views.json", at + 1)
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert sum(i.file_size for i in zf.infolist()) < 1 << 20  # the headers lie: under the limit
    with pytest.raises(runfile.RunFileError, match="damaged|more than its header"):
        runfile.read_run(path, limit=1 << 20)


def test_truncated_and_garbage_files_give_a_clear_error(tmp_path, good):
    path = _zip(tmp_path / "t.nprun", good)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(runfile.RunFileError, match=r"t\.nprun .*(truncated|damaged)"):
        runfile.read_run(path)
    (tmp_path / "g.nprun").write_bytes(b"definitely not a zip")
    with pytest.raises(runfile.RunFileError, match="not a readable run file"):
        runfile.read_run(tmp_path / "g.nprun")


def test_corrupt_member_contents_are_named(tmp_path, good):
    path = _zip(tmp_path / "c.nprun", {**good, "weights.safetensors": b"\xff" * 64})
    with pytest.raises(runfile.RunFileError, match="'weights.safetensors' is not a valid safetensors"):
        runfile.read_run(path)
    bad_design = _zip(tmp_path / "d.nprun", {**good, "design.json": b'{"format": "neural-playground-design"}'})
    with pytest.raises(runfile.RunFileError, match="'design.json' is not a usable design"):
        runfile.read_run(bad_design)


def test_newer_format_asks_for_an_update(tmp_path, good):
    path = _zip(tmp_path / "n.nprun", {**good, "manifest.json": b'{"format": "neural-playground-run", "version": 99}'})
    with pytest.raises(runfile.RunFileError, match="newer than this app reads.*update"):
        runfile.read_run(path)


def test_gan_run_is_refused_with_a_message_not_saved_half():
    """A GAN has two optimisers: saving only one would not go on where it stopped."""
    from engine.tasks import load_data, make_trainer

    spec = S.load(os.path.join(ROOT, "assets", "examples", "gan_ring.json"))
    spec.training.device = "cpu"
    tr, _probe = make_trainer(spec, load_data(spec, datasets.load))
    with pytest.raises(ValueError, match="cannot be saved as a run yet - save the design instead"):
        run_state.capture(tr)
