"""The views' arrays computed beside training, on a copy of the model, by a thread of their own.

Measured on 2 cores (bench/ui_latency.py, digits CNN): the probes (decision grid, feature maps,
confusion, health, embedding PCA) took 8-9 % of the training thread's time, and the 5 % budget
that kept them there made the views update once a second or less. The GUI process leaves most of
the second core idle, and torch releases the GIL inside its kernels, so the probes run there:
at a snapshot the training thread copies the weights, buffers, gradients and forward hooks
(ablations) into a shadow model - a few hundred microseconds for the examples - and goes on.

Only the training thread hands work over, and only when the thread is idle, so the shadow is
never written while it is read, and engine.diagnostics' "weights before the reported step" copy
(taken by the trainer just before that step) belongs to the snapshot being computed.
A snapshot that must show the current model exactly (paused, finished, forced) waits for the
thread to finish and is computed on the training thread as before.
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

# the hook dictionaries of an nn.Module that ablations (engine.analysis.Ablations) may fill
_HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
               "_forward_pre_hooks_with_kwargs")


class ProbeThread:
    """Runs ``probe(shadow_model)`` for handed-over snapshots and delivers them with their extras."""

    def __init__(self, probe: Callable[..., dict], deliver: Callable[[Any], None]):
        self._probe = probe
        self._deliver = deliver
        self._shadow: torch.nn.Module | None = None
        self._source: torch.nn.Module | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._wake = threading.Event()
        self._closed = False
        self._job: Any = None
        self._thread = threading.Thread(target=self._loop, name="probes", daemon=True)
        self._thread.start()

    # ---- the training thread --------------------------------------------------------------
    def idle(self) -> bool:
        return self._idle.is_set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def forget_model(self) -> None:
        """The model moved (device fallback) or was replaced: the next submit makes a new shadow."""
        self.wait_idle()
        self._shadow = self._source = None

    def submit(self, model: torch.nn.Module, snapshot) -> None:
        """Copy ``model`` into the shadow and compute ``snapshot``'s extras beside training (call when idle)."""
        if not self._idle.is_set():
            raise RuntimeError("ProbeThread.submit while busy: check idle() first")
        if self._closed:  # the run was closed (worker's CloseRun) while it trained on: nobody wants this
            return
        self._sync(model)
        self._idle.clear()
        self._job = snapshot
        self._wake.set()
        if self._closed:
            # closed meanwhile: the loop may have ended before it saw this job, and then nothing would
            # set idle again - the run's final report (wait_idle) blocked its thread, model and data forever
            self._idle.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    # ---- internals --------------------------------------------------------------------------
    @torch.no_grad()
    def _sync(self, model: torch.nn.Module) -> None:
        if self._source is not model or self._shadow is None:
            self._shadow, self._source = copy.deepcopy(model), model
            self._tensors = list(zip(self._shadow.state_dict(keep_vars=True).values(),
                                     model.state_dict(keep_vars=True).values(), strict=True))
            self._params = list(zip(self._shadow.parameters(), model.parameters(), strict=True))
            self._modules = list(zip(self._shadow.modules(), model.modules(), strict=True))
        for dst, src in self._tensors:
            dst.copy_(src)
        for dst, src in self._params:  # the reported step's gradients, for the gradient views
            if src.grad is None:
                dst.grad = None
            elif dst.grad is None or dst.grad.shape != src.grad.shape:
                dst.grad = src.grad.detach().clone()
            else:
                dst.grad.copy_(src.grad)
        for dst, src in self._modules:  # ablations are forward hooks on the real model
            for name in _HOOK_DICTS:
                hooks = getattr(src, name, None)
                if hooks is not None and (hooks or getattr(dst, name)):
                    setattr(dst, name, OrderedDict(hooks))

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                self._idle.set()
                return
            snap, self._job = self._job, None
            if snap is None:
                continue
            try:
                try:
                    extras = self._probe(self._shadow) or {}
                except Exception as exc:  # noqa: BLE001 - a broken view must not kill training
                    extras = {"problems": {"views": f"{type(exc).__name__}: {exc}"}}
                snap = replace(snap, extras=extras)
                self._deliver(snap)
            finally:
                self._idle.set()
