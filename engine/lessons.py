"""Lessons: a design, a few steps and claims about what training it shows, checked on real runs.

A lesson is one JSON file in ``assets/lessons/`` (see ``load_lesson`` for the layout). Its
*variants* are small edits of its design (a learning rate, an activation, another layer chain);
its *claims* are checks on the training history of one or two variants ("the loss diverged",
"momentum reached the target in fewer epochs"). The same claim functions judge a run headless
(``check_lesson`` trains every variant on the CPU) and in the GUI (the history arrays that arrive
in snapshots), so this module imports neither Qt nor torch at the top; only ``train_variant``
and the engine claims (softmax numbers, kernel-lab presets) import torch inside.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import spec as S

LESSONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "lessons")
GROUPS = ("basics", "optimisation", "regularisation", "deep nets", "convolution", "interpretation")


@dataclass
class Step:
    text: str
    variant: str = ""  # the button applies this variant to the open design
    dock: str = ""  # object name of a dock the step points at ("" for none)
    button: str = ""
    preset: str = ""  # a kernel-lab preset the step opens


@dataclass
class Claim:
    check: str
    args: dict

    @property
    def runs(self) -> list[str]:
        return [self.args[k] for k in ("run", "a", "b") if k in self.args]

    @property
    def engine_only(self) -> bool:
        return not self.runs


@dataclass
class Lesson:
    name: str
    title: str
    group: str
    order: int
    text: str
    design: S.Spec
    variants: dict[str, dict]
    steps: list[Step]
    claims: list[Claim]
    source: str = ""

    def variant_spec(self, name: str) -> S.Spec:
        return apply_variant(self.design, self.variants[name])

    def matching_variant(self, spec: S.Spec) -> str | None:
        """The variant this design is (layers, edges, dataset, training except device), if any."""
        key = _compare_key(spec)
        for name in self.variants:
            if _compare_key(self.variant_spec(name)) == key:
                return name
        return None


@dataclass
class Verdict:
    ok: bool | None  # None: the runs it needs are missing
    text: str


@dataclass
class LessonReport:
    lesson: str
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.verdicts) and all(v.ok for v in self.verdicts)


# ---- loading -----------------------------------------------------------------------------------

def _compare_key(spec: S.Spec) -> str:
    d = spec.to_dict()
    d.pop("name"), d.pop("notes")
    for lay in d["layers"]:
        lay.pop("pos")
    d["training"].pop("device")
    return json.dumps(d, sort_keys=True)


def chain_spec(base: dict) -> S.Spec:
    """A design from the compact lesson form ``{"dataset", "chain": [[kind, params], ...], "training"}``."""
    spec = S.Spec(name=base.get("name", "lesson"))
    ds = base.get("dataset", {})
    spec.dataset = S.DatasetSpec(ds.get("kind", "xor"), dict(ds.get("params", {})))
    _set_chain(spec, base["chain"])
    for k, v in base.get("training", {}).items():
        setattr(spec.training, k, v)
    return spec


def _set_chain(spec: S.Spec, chain: list) -> None:
    spec.layers = [S.LayerSpec("input1", "Input", {}, (0.0, 0.0))]
    spec.edges = []
    prev = "input1"
    y = 0.0

    def add(kind, params, src, x=0.0):
        nonlocal y
        y += 110.0
        lid = spec.new_id(kind)
        spec.layers.append(S.LayerSpec(lid, kind, dict(params), (x, y)))
        spec.edges.append(S.EdgeSpec(src, lid))
        return lid

    for kind, params in chain + [["Output", {}]]:
        if kind == "ResBlock":  # x + f(W x + b): Dense, Activation, Add joined with the block's input
            d = add("Dense", {"units": params["units"]}, prev, 120.0)
            a = add("Activation", {"function": params["function"]}, d, 120.0)
            j = add("Add", {}, a)
            spec.edges.append(S.EdgeSpec(prev, j))
            prev = j
        else:
            prev = add(kind, params, prev)


def apply_variant(design: S.Spec, variant: dict) -> S.Spec:
    """The design with a variant's edits: chain, layer params, dataset params, training fields."""
    spec = design.copy()
    if "chain" in variant:
        _set_chain(spec, variant["chain"])
    for lid, params in variant.get("layers", {}).items():
        lay = spec.layer(lid)
        if lay is None:
            raise ValueError(f"variant edits a layer '{lid}' the design does not have")
        lay.params.update(params)
    if "dataset" in variant:
        spec.dataset.params.update(variant["dataset"])
    for k, v in variant.get("training", {}).items():
        if not hasattr(spec.training, k):
            raise ValueError(f"variant sets an unknown training field '{k}'")
        setattr(spec.training, k, v)
    return spec


class LessonError(ValueError):
    """A lesson file that cannot be used; the message names the file, the field and the fix."""


NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")
_STEP_FIELDS = ("text", "variant", "dock", "button", "preset")


def load_lesson(path: str) -> Lesson:
    """Read one lesson file: name, title, group, order, text, design (full or compact), variants,
    steps [{text, variant?, dock?, button?, preset?}], claims [{check, ...args}]. Raises LessonError
    (a ValueError) naming the file and the field for anything else."""
    try:
        with open(path, encoding="utf-8") as fh:
            d = json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise LessonError(f"{os.path.basename(path)} is not valid JSON ({exc}) - fix the file or export it again") from None
    return lesson_from_dict(d, path)


def lesson_from_dict(d: Any, source: str) -> Lesson:
    """A lesson from its JSON object; every field is checked, so a lesson from a bundle someone sent
    fails here with a message rather than later, half-way through a run."""
    where = os.path.basename(source) or source

    def bad(fld: str, why: str):
        return LessonError(f"{where}: field '{fld}' {why}")

    if not isinstance(d, dict):
        raise LessonError(f"{where}: the top level must be a JSON object {{...}} with name, title, group, text, "
                          "design and claims")
    for fld in ("name", "title", "group", "text"):
        if not isinstance(d.get(fld), str) or not d[fld].strip():
            raise bad(fld, "is missing or not text")
    if not set(d["name"]) <= NAME_CHARS or len(d["name"]) > 64:
        raise bad("name", f"{d['name']!r} must be up to 64 lower-case letters, digits, '_' or '-' (it names the file)")
    if d["group"] not in GROUPS:
        raise bad("group", f"{d['group']!r} is not one of {', '.join(GROUPS)}")
    order = d.get("order", 0)
    if not isinstance(order, (int, float)) or isinstance(order, bool):
        raise bad("order", "must be a number")
    variants = d.get("variants", {}) or {"default": {}}
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise bad("variants", "must be an object of variant objects {name: {label, training, ...}}")
    steps = d.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise bad("steps", "must be a list of objects {text, variant?, dock?, button?, preset?}")
    for i, s in enumerate(steps):
        extra = sorted(set(s) - set(_STEP_FIELDS))
        if extra or not isinstance(s.get("text"), str) or not all(isinstance(v, str) for v in s.values()):
            raise bad(f"steps[{i}]", f"must have text and only {', '.join(_STEP_FIELDS[1:])} as text"
                      + (f" (unknown: {', '.join(extra)})" if extra else ""))
        if s.get("variant") and s["variant"] not in variants:
            raise bad(f"steps[{i}].variant", f"names a variant {s['variant']!r} that is not defined")
    claims = d.get("claims")
    if not isinstance(claims, list) or not all(isinstance(c, dict) and isinstance(c.get("check"), str) for c in claims):
        raise bad("claims", "must be a list of objects, each with a 'check'")
    design = d.get("design")
    if not isinstance(design, dict):
        raise bad("design", "must be an object: a design or the compact {dataset, chain, training} form")
    try:
        spec = chain_spec(design) if "chain" in design else S.spec_from_dict(design)
        S.spec_from_dict(spec.to_dict())  # the compact form is checked like any design file
    except S.SpecError as exc:
        raise bad("design", "is not a usable design:\n" + str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise bad("design", f"is not a usable design ({type(exc).__name__}: {exc})") from None
    spec.name = d["title"]
    spec.notes = d["text"]
    lesson = Lesson(name=d["name"], title=d["title"], group=d["group"], order=int(order), text=d["text"],
                    design=spec, variants=variants, steps=[Step(**s) for s in steps],
                    claims=[Claim(c["check"], {k: v for k, v in c.items() if k != "check"}) for c in claims],
                    source=source)
    for name in variants:
        try:
            S.spec_from_dict(lesson.variant_spec(name).to_dict())
        except S.SpecError as exc:
            raise bad(f"variants.{name}", "does not give a usable design:\n" + str(exc)) from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise bad(f"variants.{name}", f"cannot be applied ({exc})") from None
    for i, c in enumerate(lesson.claims):
        if c.check not in CLAIMS:
            raise bad(f"claims[{i}].check", f"{c.check!r} is not one of {', '.join(sorted(CLAIMS))}")
        for r in c.runs:
            if r not in lesson.variants:
                raise bad(f"claims[{i}]", f"({c.check}) names a variant {r!r} that is not defined")
    return lesson


def all_lessons(folder: str = LESSONS_DIR, user_folder: str | None = None) -> list[Lesson]:
    """The shipped lessons in ``folder``, then those a user installed in ``user_folder`` (when given):
    a user lesson that cannot be read, or whose name a shipped lesson took since, is left out
    (``user_lessons`` says why)."""
    out = [load_lesson(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if f.endswith(".json")]
    if user_folder:
        shipped = {les.name for les in out}
        out += [les for les in user_lessons(user_folder)[0] if les.name not in shipped]
    return sorted(out, key=lambda les: (GROUPS.index(les.group), les.order, les.name))


def user_lessons(folder: str) -> tuple[list[Lesson], list[str]]:
    """(lessons, problems) of the installed lessons in ``folder``; a missing folder has none."""
    lessons, problems = [], []
    try:
        files = sorted(f for f in os.listdir(folder) if f.endswith(".json"))
    except OSError:
        return [], []
    for f in files:
        try:
            lessons.append(load_lesson(os.path.join(folder, f)))
        except (LessonError, OSError) as exc:
            problems.append(str(exc))
    return lessons, problems


def find(name: str, folder: str = LESSONS_DIR) -> Lesson:
    for les in all_lessons(folder):
        if les.name == name:
            return les
    raise KeyError(name)


# ---- claims: numbers in, verdict out (history arrays as the GUI has them) ---------------------------

History = dict  # "train_loss", "val_loss", "train_acc", "val_acc", "lr", "epoch" arrays; "state" text


def _arr(h: History, key: str) -> np.ndarray:
    return np.asarray(h.get(key, []), dtype=np.float64)


def _first_epoch_reaching(h: History, key: str, target: float, below: bool) -> int | None:
    a = _arr(h, key)
    hit = np.flatnonzero(a <= target if below else a >= target)
    return int(hit[0]) + 1 if len(hit) else None


def _noise(h: History) -> float:
    """Std of epoch-to-epoch loss changes with the trend removed (second differences)."""
    a = _arr(h, "train_loss")
    return float(np.std(np.diff(a, 2))) if len(a) > 3 else math.nan


def c_acc_at_most(runs, run, value, key="val_acc", **_):
    best = float(np.nanmax(_arr(runs[run], key)))
    return best <= value, f"'{run}': best {key.replace('_', ' ')} {best:.0%} (claim: stays at or below {value:.0%})"


def c_final_acc_at_most(runs, run, value, key="val_acc", **_):
    last = float(_arr(runs[run], key)[-1])
    return last <= value, f"'{run}': final {key.replace('_', ' ')} {last:.0%} (claim: at most {value:.0%}, about chance)"


def c_calmer(runs, a, b, last=10, **_):
    """Over the last epochs, a's loss changes less from epoch to epoch than b's."""
    def wobble(h):
        return float(np.std(np.diff(_arr(h, "train_loss")[-last:])))
    wa, wb = wobble(runs[a]), wobble(runs[b])
    return wa < wb, f"loss wobble over the last {last} epochs: '{a}' {wa:.2g} vs '{b}' {wb:.2g} (claim: '{a}' calmer)"


def c_acc_at_least(runs, run, value, key="val_acc", **_):
    last = float(_arr(runs[run], key)[-1])
    return last >= value, f"'{run}': final {key.replace('_', ' ')} {last:.0%} (claim: at least {value:.0%})"


def c_diverges_or_oscillates(runs, run, **_):
    h = runs[run]
    loss = _arr(h, "train_loss")
    if h.get("state") == "diverged":
        return True, f"'{run}': the loss diverged after epoch {len(loss)}, as expected"
    ups = int(np.sum(np.diff(loss) > 0))
    ok = len(loss) > 2 and (ups >= len(loss) // 4 or loss[-1] > 0.5 * loss[0])
    return ok, f"'{run}': the loss rose in {ups} of {len(loss) - 1} epochs and ended at {loss[-1]:.3g} (from {loss[0]:.3g})"


def c_converges(runs, run, ratio=0.5, **_):
    loss = _arr(runs[run], "train_loss")
    ok = runs[run].get("state") != "diverged" and loss[-1] <= ratio * loss[0]
    return ok, f"'{run}': the loss fell from {loss[0]:.3g} to {loss[-1]:.3g} (claim: below {ratio:g} x the first epoch)"


def c_crawls(runs, run, ratio=0.9, **_):
    loss = _arr(runs[run], "train_loss")
    text = f"'{run}': the loss only went from {loss[0]:.3g} to {loss[-1]:.3g} (claim: stays above {ratio:g} x)"
    return loss[-1] >= ratio * loss[0], text


def c_gap_at_least(runs, run, value, **_):
    h = runs[run]
    tr, va = float(_arr(h, "train_acc")[-1]), float(_arr(h, "val_acc")[-1])
    return tr - va >= value, f"'{run}': train accuracy {tr:.0%}, validation {va:.0%}, gap {tr - va:.0%} (claim: >= {value:.0%})"


def c_val_loss_smaller(runs, a, b, **_):
    """Final validation loss of a below that of b."""
    la, lb = float(_arr(runs[a], "val_loss")[-1]), float(_arr(runs[b], "val_loss")[-1])
    return la < lb, f"validation loss: '{a}' {la:.3g} vs '{b}' {lb:.3g} (claim: '{a}' lower)"


def c_gap_smaller(runs, a, b, margin=0.0, **_):
    def gap(h):
        return float(np.mean(_arr(h, "train_acc")[-5:] - _arr(h, "val_acc")[-5:]))
    ga, gb = gap(runs[a]), gap(runs[b])
    return ga + margin <= gb, f"train-validation gap: '{a}' {ga:.0%} vs '{b}' {gb:.0%} (claim: '{a}' smaller)"


def c_noisier(runs, a, b, factor=2.0, **_):
    na, nb = _noise(runs[a]), _noise(runs[b])
    ok = na >= factor * nb
    return ok, f"loss noise (std of 2nd differences): '{a}' {na:.2g} vs '{b}' {nb:.2g} (claim: at least {factor:g}x)"


def c_faster(runs, a, b, target, key="train_loss", **_):
    below = "loss" in key
    ea, eb = (_first_epoch_reaching(runs[r], key, target, below) for r in (a, b))
    word = "below" if below else "above"
    ok = ea is not None and (eb is None or ea < eb)
    show = lambda e: "never" if e is None else f"epoch {e}"  # noqa: E731
    return ok, f"{key.replace('_', ' ')} {word} {target:g}: '{a}' at {show(ea)}, '{b}' at {show(eb)} (claim: '{a}' sooner)"


def c_best_val_before_end(runs, run, epochs_before=10, rise=0.05, **_):
    v = _arr(runs[run], "val_loss")
    best = int(np.nanargmin(v))
    ok = best + 1 <= len(v) - epochs_before and v[-1] >= v[best] * (1 + rise)
    return ok, (f"'{run}': validation loss was lowest at epoch {best + 1} ({v[best]:.3g}) and ended at {v[-1]:.3g}: "
                f"early stopping would keep epoch {best + 1}")


def c_lr_schedule(runs, run, **_):
    h = runs[run]
    lr = _arr(h, "lr")
    t = h.get("training", {})
    sched, lr0, g, step = t.get("lr_schedule", "none"), t.get("lr", lr[0]), t.get("gamma", 0.5), t.get("step_size", 30)
    n = len(lr)
    e = np.arange(1, n + 1)  # history's lr is read after each epoch, before the scheduler steps
    if sched == "step":
        want = lr0 * g ** ((e - 1) // step)
    elif sched == "exponential":
        want = lr0 * g ** (e - 1)
    elif sched == "cosine":
        T = t.get("epochs", n)
        want = lr0 * (1 + np.cos(np.pi * (e - 1) / T)) / 2
    else:
        want = np.full(n, lr0)
    ok = bool(np.allclose(lr, want, rtol=1e-6, atol=1e-12))
    return ok, f"'{run}': the learning rate went {lr[0]:.3g} -> {lr[n // 2]:.3g} -> {lr[-1]:.3g}, as the {sched} schedule says"


def c_final_loss_lower(runs, a, b, **_):
    la, lb = float(_arr(runs[a], "train_loss")[-1]), float(_arr(runs[b], "train_loss")[-1])
    return la < lb, f"final training loss: '{a}' {la:.3g} vs '{b}' {lb:.3g} (claim: '{a}' lower)"


def c_loss_stalls(runs, run, value, **_):
    loss = _arr(runs[run], "train_loss")
    return loss[-1] >= value, f"'{run}': the loss ended at {loss[-1]:.3g} (claim: stuck at or above {value:g}, little learnt)"


def c_loss_below(runs, run, value, **_):
    loss = _arr(runs[run], "train_loss")
    return loss[-1] <= value, f"'{run}': the loss ended at {loss[-1]:.3g} (claim: at most {value:g})"


def c_softmax_numbers(runs, **_):
    """The engine's cross-entropy on logits [5, 2, -1, 3] is -log of [0.842, 0.042, 0.002, 0.114]."""
    import torch

    from engine.trainer import loss_fn

    logits = torch.tensor([[5.0, 2.0, -1.0, 3.0]], dtype=torch.float64)
    probs = [math.exp(-loss_fn(logits, torch.tensor([c]), "cross_entropy").item()) for c in range(4)]
    want = [0.842, 0.042, 0.002, 0.114]
    ok = all(abs(p - w) < 0.0005 for p, w in zip(probs, want, strict=True)) and abs(sum(probs) - 1) < 1e-9
    return ok, f"the engine's loss says p = [{', '.join(f'{p:.3f}' for p in probs)}] for logits [5, 2, -1, 3]"


def c_kernel_presets(runs, prefix="", **_):
    """Every kernel-lab preset whose name starts with ``prefix`` gives what the notes say."""
    from engine import kernel_lab as K

    names = [n for n in K.PRESETS if n.startswith(prefix)]
    bad = [n for n in names if not K.preset_matches(*K.run_preset(n))]
    return not bad and bool(names), (f"kernel lab: {len(names) - len(bad)} of {len(names)} presets "
                                     f"'{prefix}...' match the notes" + (f"; wrong: {', '.join(bad)}" if bad else ""))


CLAIMS: dict[str, Callable] = {
    "acc_at_most": c_acc_at_most, "acc_at_least": c_acc_at_least, "diverges_or_oscillates": c_diverges_or_oscillates,
    "converges": c_converges, "crawls": c_crawls, "gap_at_least": c_gap_at_least, "gap_smaller": c_gap_smaller,
    "noisier": c_noisier, "faster": c_faster, "best_val_before_end": c_best_val_before_end,
    "lr_schedule": c_lr_schedule, "final_loss_lower": c_final_loss_lower, "loss_stalls": c_loss_stalls,
    "loss_below": c_loss_below, "final_acc_at_most": c_final_acc_at_most, "calmer": c_calmer,
    "val_loss_smaller": c_val_loss_smaller,
    "softmax_numbers": c_softmax_numbers, "kernel_presets": c_kernel_presets,
}


def judge(lesson: Lesson, runs: dict[str, History], with_engine: bool = True) -> list[Verdict]:
    """One verdict per claim; claims whose runs are missing say which step to do."""
    out = []
    for c in lesson.claims:
        if c.engine_only and not with_engine:
            out.append(Verdict(None, f"{c.check.replace('_', ' ')}: checked by the test suite "
                                     "(python main.py lesson " + lesson.name + " --check)"))
            continue
        missing = [r for r in c.runs if r not in runs or not len(runs[r].get("train_loss", []))]
        if missing:
            labels = ", ".join(lesson.variants[m].get("label", m) for m in missing)
            out.append(Verdict(None, f"not yet run: {labels}"))
            continue
        try:
            ok, text = CLAIMS[c.check](runs, **c.args)
        except (ValueError, IndexError, KeyError) as exc:  # a run too short to judge
            ok, text = False, f"{c.check}: cannot judge this run ({exc})"
        out.append(Verdict(bool(ok), ("as expected: " if ok else "this run did not show it: ") + text))
    return out


def history_of(hist: dict, state: str, spec: S.Spec) -> History:
    """A run's history arrays (from a Snapshot or a Trainer) with what the claims read besides."""
    h = {k: np.asarray(v, dtype=np.float64) for k, v in hist.items()}
    h["state"] = state
    h["training"] = {k: getattr(spec.training, k) for k in ("lr", "lr_schedule", "gamma", "step_size", "epochs")}
    return h


# ---- headless -------------------------------------------------------------------------------------

def train_variant(lesson: Lesson, variant: str) -> tuple[History, float]:
    """Train one variant on the CPU with the design's seed; (history, seconds)."""
    import torch

    from engine import datasets
    from engine.trainer import Trainer

    spec = lesson.variant_spec(variant)
    spec.training.device = "cpu"
    torch.manual_seed(spec.training.seed)
    t0 = time.perf_counter()
    trainer = Trainer(spec, datasets.load(spec.dataset), device="cpu", max_rate=0)
    trainer.run()
    return history_of(trainer.history, trainer.ended, spec), time.perf_counter() - t0


def check_lesson(lesson: Lesson, progress: Callable[[str], None] | None = None) -> LessonReport:
    rep = LessonReport(lesson.name)
    runs: dict[str, History] = {}
    needed = [r for c in lesson.claims for r in c.runs]
    for name in dict.fromkeys(needed):
        runs[name], rep.seconds[name] = train_variant(lesson, name)
        if progress:
            progress(f"trained '{name}' in {rep.seconds[name]:.1f} s")
    t0 = time.perf_counter()
    rep.verdicts = judge(lesson, runs)
    rep.seconds["claims"] = time.perf_counter() - t0
    return rep


def describe_runs(lesson: Lesson) -> list[tuple[str, str]]:
    return [(name, v.get("label", name)) for name, v in lesson.variants.items()]


def summary(lesson: Lesson) -> dict[str, Any]:
    return {"name": lesson.name, "title": lesson.title, "group": lesson.group}
