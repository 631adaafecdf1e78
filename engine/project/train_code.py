"""The design's training as a stand-alone ``train.py`` (templates/train.py.txt, filled in here).

The template is the loop of engine.trainer.Trainer written out for one process or many
(torchrun): the settings block, the optimiser and the schedule come from the design, and the
loss and score functions are copied from engine.trainer, so one process trains exactly as
the playground does.
"""
from __future__ import annotations

import inspect
import os

from engine import trainer
from engine.project.readme import plain_name
from engine.spec import Spec

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "train.py.txt")


def _optimizer(t) -> str:
    wd = f"weight_decay={t.weight_decay!r}"
    if t.optimizer == "sgd":
        return f"return torch.optim.SGD(params, lr={t.lr!r}, momentum={t.momentum!r}, nesterov={t.nesterov}, {wd})"
    if t.optimizer == "rmsprop":
        return f"return torch.optim.RMSprop(params, lr={t.lr!r}, momentum={t.momentum!r}, {wd})"
    cls = {"adam": "Adam", "adamw": "AdamW", "adagrad": "Adagrad"}[t.optimizer]
    return f"return torch.optim.{cls}(params, lr={t.lr!r}, {wd})"


def _scheduler(t) -> str:
    sched = "torch.optim.lr_scheduler"
    if t.lr_schedule == "step":
        return f"return {sched}.StepLR(optimizer, step_size={t.step_size}, gamma={t.gamma!r})"
    if t.lr_schedule == "exponential":
        return f"return {sched}.ExponentialLR(optimizer, gamma={t.gamma!r})"
    if t.lr_schedule == "cosine":
        return f"return {sched}.CosineAnnealingLR(optimizer, T_max=max(1, epochs))"
    return "return None  # the design uses a constant learning rate"


def train_source(spec: Spec, regression: bool) -> str:
    """The text of train.py for ``spec`` (``regression``: the dataset's targets are numbers)."""
    t = spec.training
    settings = "\n".join([
        f"EPOCHS = {t.epochs}",
        f"BATCH_SIZE = {t.batch_size}",
        f"SEED = {t.seed}",
        f'LOSS = "{t.loss}"',
        f"REGRESSION = {regression}  # the targets are numbers (R^2 is reported instead of accuracy)",
        f"L1 = {t.l1!r}",
        f"L2 = {t.l2!r}",
        f"GRAD_CLIP = {t.grad_clip!r}  # max global gradient norm; 0 = off",
        f'DEVICE = "{t.device}"  # auto: cuda > mps > cpu',
    ])
    loss = "\n\n".join(inspect.getsource(f).rstrip("\n") + "\n"
                       for f in (trainer.outputs_to_pred, trainer.loss_fn, trainer.score))
    with open(TEMPLATE, encoding="utf-8") as fh:
        text = fh.read()
    for key, value in (("@@NAME@@", plain_name(spec.name)), ("@@SETTINGS@@", settings),
                       ("@@OPTIMIZER@@", _optimizer(t)), ("@@SCHEDULER@@", _scheduler(t)), ("@@LOSS@@", loss.rstrip("\n"))):
        text = text.replace(key, value)
    return text
