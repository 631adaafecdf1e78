"""A comparison in the worker (issue 12): the variants of a design's sweep, trained at once.

``CompareHost`` is engine.worker's RunHost for a StartComparison: in a thread of its own it
loads the data (the worker's cache), expands the sweep (engine.variants.expand), makes one
BatchedTrainer per batch group (engine.batched.compare_trainers) and runs each group in a
thread of its own; groups of different structure are interleaved by the threads.

What crosses to the GUI (engine.protocol): ComparisonStarted once, then VariantSnapshot per
variant - at most ``max_rate`` per variant and COMPARE_MAX_MESSAGES a second in all, with the
unchanged arrays left out per variant (Snapshot.same) - and ComparisonEnded when every group
has ended (or ComparisonFailed). Each variant's views are cheap on purpose: a 50 x 50 decision
boundary for 2-D data or a confusion matrix for images, recomputed at most every
``probe_interval`` seconds (0.5 s), so 16 variants' probes stay a small share of training.

Control: Control applies to every group (pause, resume, step, stop); StopVariant stops one
variant and leaves the rest training; FetchVariantWeights answers VariantWeights on the
variant's training thread, between two batches.
"""
from __future__ import annotations

import threading
import time
import traceback

from engine import protocol as P

PROBE_INTERVAL = 0.5  # s between two probes of one variant (the issue asks ~2/s at most)
GRID_RES = 50


class ThrottledProbe:
    """A Prober called at most every ``interval`` seconds; in between, its last answer again
    (the same arrays, which the worker then sends by name only)."""

    def __init__(self, prober, interval: float = PROBE_INTERVAL):
        self.prober = prober
        self.interval = interval
        self._at = -1e18
        self._last: dict = {}
        self._conf_src = self._conf = None

    def __call__(self, model, force: bool = False) -> dict:
        now = time.perf_counter()
        if force or now - self._at >= self.interval:
            self._last = self._slim(self.prober(model, force=force) or {})
            self._at = now
        return dict(self._last)

    def _slim(self, out: dict) -> dict:
        """Only the confusion matrix of the confusion part: the grid shows no misclassified images, which
        for 16 variants of a colour image set would be megabytes a second. The same slim dict is returned
        while the Prober's part is unchanged, so the worker still sends it once."""
        conf = out.get("confusion")
        if isinstance(conf, dict):
            if conf is not self._conf_src:
                self._conf_src, self._conf = conf, {"matrix": conf["matrix"]}
            out["confusion"] = self._conf
        return out


def probe_options(is_image: bool, res: int = GRID_RES) -> dict:
    """Only what the Compare grid shows: a boundary for points, a confusion matrix for images."""
    return {"boundary": not is_image, "grid_res": int(res), "neurons": False, "weights": False, "filters": False,
            "confusion": bool(is_image), "feature_sample": None, "saliency": None, "health": False,
            "gradients": False, "distributions": None, "slow_interval": 1.0}


class CompareHost:
    """One comparison in the worker; the same surface as engine.worker.RunHost (handle, close, thread)."""

    def __init__(self, cmd: P.StartComparison, send, cache, run_data, describe_failure):
        """``run_data`` and ``describe_failure`` are engine.worker's (passed in: the worker imports this module)."""
        self.cmd = cmd
        self._run_data = run_data
        self._describe = describe_failure
        self.run_id = cmd.run_id
        self._send = send
        self._cache = cache
        self._lock = threading.Lock()
        self._pending: list = []
        self._closed = threading.Event()
        self.groups: list[tuple[list[int], object]] = []  # (variant indices, BatchedTrainer)
        self._sent: dict[int, dict] = {}  # variant index -> extras of its last snapshot sent
        self._sent_lock = threading.Lock()
        self._done: list = []  # trainers whose run() has returned
        self.thread = threading.Thread(target=self._main, name=f"compare-{cmd.run_id}", daemon=True)

    # ---- command side -------------------------------------------------------------------
    def handle(self, cmd) -> None:
        with self._lock:
            if not self.groups:
                self._pending.append(cmd)
                return
        self._apply(cmd)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            groups = list(self.groups)
        for _, tr in groups:
            tr.stop()

    def _where(self, index: int):
        for group, tr in self.groups:
            if index in group:
                return tr, group.index(index)
        return None, -1

    def _apply(self, cmd) -> None:
        if isinstance(cmd, P.Control):
            for _, tr in self.groups:
                {"pause": tr.pause, "resume": tr.resume, "step": tr.step_once, "stop": tr.stop}[cmd.action]()
        elif isinstance(cmd, P.StopVariant):
            tr, local = self._where(cmd.index)
            if tr is not None:
                tr.stop_variant(local)
        elif isinstance(cmd, P.FetchVariantWeights):
            tr, local = self._where(cmd.index)
            if tr is not None:
                tr.call_soon(lambda: self._send_weights(tr, cmd.index, local))
        elif isinstance(cmd, P.Refresh):
            for _, tr in self.groups:
                tr.call_soon(tr.report)

    def _send_weights(self, tr, index: int, local: int) -> None:
        from engine.model_utils import state_to_numpy  # torch: this module is imported before it is loaded

        state = state_to_numpy(tr.model_for(local))
        self._send(P.VariantWeights(self.run_id, index, tr.step, state))

    # ---- the comparison's threads --------------------------------------------------------
    def _main(self) -> None:
        try:
            threads = self._build()
            if threads is None:
                return
            for t in threads:
                t.start()
            while len(self._done) < len(threads) and not self._closed.is_set():
                time.sleep(0.05)  # the threads live on after training, serving weights
            if self._closed.is_set():
                return
            results = tuple(r for _, tr in self.groups for r in tr.results())
            order = [i for group, _ in self.groups for i in group]
            by_index = dict(zip(order, results, strict=True))
            self._send(P.ComparisonEnded(self.run_id, tuple(by_index[i] for i in sorted(by_index))))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the GUI
            traceback.print_exc()
            self._send(P.ComparisonFailed(self.run_id, self._describe(exc)))

    def _build(self) -> list[threading.Thread] | None:
        from engine import spec as S
        from engine.batched import compare_trainers
        from engine.probes import Prober
        from engine.tasks import load_data
        from engine.trainer import device_name
        from engine.variants import expand

        cmd = self.cmd
        spec = S.loads(cmd.spec_json)
        data = load_data(spec, lambda ds: self._cache.load(ds))
        variants = expand(spec, data_info=data.info)
        is_image = len(data.info.input_shape) == 3
        opts = probe_options(is_image, int(cmd.view_options.get("grid_res", GRID_RES)))
        interval = float(cmd.view_options.get("probe_interval", PROBE_INTERVAL))
        probes = [ThrottledProbe(Prober(data, v.spec.training.loss, opts), interval) for v in variants]
        rate = max(0.5, min(float(cmd.max_rate), P.COMPARE_MAX_MESSAGES / len(variants)))
        groups = compare_trainers(variants, data, on_snapshot=self._on_snapshot, probes=probes,
                                  device=cmd.device, max_rate=rate)
        device = device_name(groups[0][1].device)
        self._send(P.ComparisonStarted(self.run_id, device, self._run_data(data), tuple(v.label for v in variants)))
        with self._lock:
            if self._closed.is_set():
                return None
            self.groups = groups
            pending, self._pending = self._pending, []
        for c in pending:
            self._apply(c)
        return [threading.Thread(target=self._train, args=(tr,), name=f"compare-{self.run_id}-{k}", daemon=True)
                for k, (_, tr) in enumerate(groups)]

    def _train(self, tr) -> None:
        try:
            tr.run()
        except Exception as exc:  # noqa: BLE001 - the other groups go on; the GUI hears why this one broke
            traceback.print_exc()
            self._send(P.ComparisonFailed(self.run_id, self._describe(exc)))
        self._done.append(tr)
        tr.serve_tasks(self._closed)  # weights for "Use this variant" after the end

    def _on_snapshot(self, index: int, snap: P.Snapshot) -> None:
        with self._sent_lock:
            sent, self._sent[index] = self._sent.get(index, {}), dict(snap.extras)
        self._send(P.VariantSnapshot(self.run_id, index, P.leave_out_unchanged(snap, sent)))
