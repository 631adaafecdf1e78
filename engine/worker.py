"""A training process: runs engine.trainer for the GUI without sharing its interpreter lock.

Measured on 2 cores: a trainer in a GUI thread lost 50-85 % of its speed to the GIL whenever
the views painted (pyqtgraph painting is Python). In its own process it keeps its speed and
the event loop stays free. The process is started once, imports torch, and then serves jobs.

Protocol (multiprocessing connections; both ends are ours, so pickling is safe here):
  jobs   (GUI -> worker): {"spec": json, "device", "options", "paused", "threads", "max_rate",
                            "state_dict": numpy dict | None} or None to quit
  control (GUI -> worker): (name, kwargs, job id) for pause/resume/step_once/stop/set_hyper,
                           ("options", dict, id) for the prober, ("weights", {}, id) to ask for the weights
  events (worker -> GUI): ("ready", device_name) | ("started", info) | ("snapshot", Snapshot) |
                          ("weights", numpy state dict, step) | ("done", Result, state dict) | ("failed", message)
"""
from __future__ import annotations

import threading
import traceback


def state_to_numpy(model) -> dict:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def numpy_to_state(sd: dict) -> dict:
    import torch

    return {k: torch.from_numpy(v) for k, v in sd.items()}


def serve(jobs, control, events) -> None:
    """Worker process main loop (the target of multiprocessing.Process)."""
    import torch

    from engine import datasets
    from engine import spec as S
    from engine.probes import Prober
    from engine.trainer import Trainer, choose_device, device_name

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # pays the one-off torch._dynamo import now
    events.send(("ready", device_name(choose_device("auto"))))
    state = {"trainer": None, "prober": None, "pending": [], "job": None}
    lock = threading.Lock()

    def listen() -> None:
        while True:
            try:
                name, kw, job_id = control.recv()
            except (EOFError, OSError):
                return
            with lock:
                trainer, prober = state["trainer"], state["prober"]
                if name != "quit" and (trainer is None or job_id != state["job"]):
                    # that job is still loading its data: apply this once its trainer exists
                    state["pending"].append((name, kw, job_id))
                    continue
            if name == "options" and prober is not None:
                prober.options = kw
            elif name == "weights" and trainer is not None:
                # read between batches is not guaranteed here; a copy of a tensor being updated
                # is at worst one step stale, which is fine for a paused or finished model
                events.send(("weights", state_to_numpy(trainer.model), trainer.step))
            elif trainer is not None and name in ("pause", "resume", "step_once", "stop", "set_hyper"):
                getattr(trainer, name)(**kw)
            elif name == "quit":
                return

    threading.Thread(target=listen, name="control", daemon=True).start()
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            torch.set_num_threads(int(job.get("threads", 1)))
            spec = S.loads(job["spec"])
            data = datasets.load(spec.dataset)
            prober = Prober(data, spec.training.loss, job.get("options") or {})
            model = None
            if job.get("state_dict") is not None:
                from engine.build import build

                model = build(spec, data.info)
                model.load_state_dict(numpy_to_state(job["state_dict"]))
            trainer = Trainer(spec, data, device=job.get("device"), probe=prober, model=model,
                              max_rate=job.get("max_rate", 30.0),
                              on_snapshot=lambda snap: events.send(("snapshot", snap)))
            if job.get("paused"):
                trainer.pause()
                trainer.step_once()
            with lock:
                state["trainer"], state["prober"], state["job"] = trainer, prober, job.get("id")
                # commands for older jobs (a Stop that crossed the end of its run) are dropped
                pending = [(n, k) for n, k, j in state["pending"] if j == job.get("id")]
                state["pending"] = []
            for name, kw in pending:
                if name == "options":
                    prober.options = kw
                elif name in ("pause", "resume", "step_once", "stop", "set_hyper"):
                    getattr(trainer, name)(**kw)
                elif name == "weights":
                    events.send(("weights", state_to_numpy(trainer.model), trainer.step))
            events.send(("started", {"device": device_name(trainer.device)}))
            try:
                result = trainer.run()
            except RuntimeError as exc:
                if trainer.device.type != "cuda":
                    raise
                # a CUDA failure (out of memory, lost device) must not end the run: go on on the CPU
                events.send(("notice", f"GPU error ({str(exc).splitlines()[0][:120]}) - continuing on the CPU"))
                torch.cuda.empty_cache()
                trainer = Trainer(spec, data, device="cpu", probe=prober, model=trainer.model.cpu(),
                                  max_rate=job.get("max_rate", 30.0),
                                  on_snapshot=lambda snap: events.send(("snapshot", snap)))
                with lock:
                    state["trainer"] = trainer
                result = trainer.run()
            events.send(("done", result, state_to_numpy(trainer.model)))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the GUI
            traceback.print_exc()
            events.send(("failed", f"{type(exc).__name__}: {exc}"))
        finally:
            with lock:
                state["trainer"], state["prober"], state["job"] = None, None, None
