"""Layer health: the thresholds behind the canvas badges, in one place, and the rule that applies them.

Plain Python (no torch): engine.diagnostics measures, this module judges. Each badge is
``(code, label, hint)``; the hint is the one line the card's tooltip shows.

Thresholds (why these values):
- dead ReLU: a unit whose output is 0 for every validation sample (at most DIAG_SAMPLES of
  them) is dead - no gradient reaches its weights. Some dead units are normal (a healthy
  10-layer ReLU net with He init has up to a third in a layer); the badge shows when at least
  DEAD_FRACTION of the layer's units are dead.
- saturated sigmoid/tanh: a unit is saturated when its output is within SATURATION_MARGIN of
  the function's limits (sigmoid 0 or 1, tanh -1 or 1; |pre-activation| > ~3.9 for sigmoid,
  > ~2.3 for tanh) for at least SATURATED_SAMPLES of the samples; there the slope is < 0.02,
  so it barely learns. Badge when at least SATURATED_FRACTION of the units are.
- vanishing gradients: a layer whose weight-gradient norm is below VANISHING_RELATIVE times the
  largest layer's in the same network (or below VANISHING_ABSOLUTE) learns orders of magnitude
  slower than the rest - the classic deep-sigmoid picture.
- exploding gradients: a weight-gradient norm above EXPLODING_ABSOLUTE, or not finite.
- update/weight ratio: ||w_after - w_before|| / ||w_before|| for one step is ~1e-3 in a
  healthy run (Karpathy's rule of thumb). Below UPDATE_RATIO_LOW the layer is frozen for
  practical purposes; above UPDATE_RATIO_HIGH every step rewrites a tenth of the weights.
"""
from __future__ import annotations

import math

DIAG_SAMPLES = 512  # validation samples the activation measurements use (a fixed random subset)
DEAD_FRACTION = 0.5
SATURATION_MARGIN = 0.02
SATURATED_SAMPLES = 0.9
SATURATED_FRACTION = 0.25
VANISHING_RELATIVE = 1e-2
VANISHING_ABSOLUTE = 1e-7
EXPLODING_ABSOLUTE = 1e2
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_HIGH = 1e-1

Badge = tuple[str, str, str]  # (code, short label, one-line hint)


def _fmt(v: float) -> str:
    return f"{v:.1e}" if v and (abs(v) < 1e-2 or abs(v) >= 1e3) else f"{v:.3g}"


def activation_badges(function: str, dead: float | None, saturated: float | None, units: int) -> list[Badge]:
    """Badges of an Activation layer from its fractions of dead / saturated units."""
    out: list[Badge] = []
    if function == "relu" and dead is not None and dead >= DEAD_FRACTION:
        out.append(("dead_relu", f"dead {round(dead * units)}/{units}",
                    f"{round(dead * units)} of {units} ReLU units never fire on the validation set - "
                    "lower the learning rate, use He init or leaky_relu"))
    if function in ("sigmoid", "tanh") and saturated is not None and saturated >= SATURATED_FRACTION:
        out.append(("saturated", f"saturated {round(saturated * units)}/{units}",
                    f"{round(saturated * units)} of {units} {function} units sit at their limits (slope ~0) - "
                    "use a smaller init (Xavier), normalise inputs or add BatchNorm"))
    return out


def gradient_badges(norms: dict[str, float], ratios: dict[str, float]) -> dict[str, list[Badge]]:
    """Badges of the weighted layers from their gradient norms and update/weight ratios (one step)."""
    finite = [v for v in norms.values() if math.isfinite(v)]
    top = max(finite) if finite else 0.0
    out: dict[str, list[Badge]] = {}
    for lid, g in norms.items():
        badges: list[Badge] = []
        if not math.isfinite(g) or g > EXPLODING_ABSOLUTE:
            badges.append(("exploding", "exploding",
                           f"gradient norm {_fmt(g)} > {_fmt(EXPLODING_ABSOLUTE)} - lower the learning rate, "
                           "add gradient clipping or normalisation"))
        elif top > 0 and (g < VANISHING_RELATIVE * top or g < VANISHING_ABSOLUTE):
            badges.append(("vanishing", "vanishing",
                           f"gradient norm {_fmt(g)} is {_fmt(top / max(g, 1e-30))}x below the largest layer's - "
                           "use ReLU with He init, fewer layers, BatchNorm or residual connections"))
        r = ratios.get(lid, math.nan)
        if not math.isnan(r) and (r < UPDATE_RATIO_LOW or r > UPDATE_RATIO_HIGH):
            low = r < UPDATE_RATIO_LOW
            badges.append(("update_ratio", f"update {_fmt(r)}",
                           f"each step changes the weights by {_fmt(r)} of their size (healthy ~1e-3) - "
                           + ("raise the learning rate or check for vanishing gradients" if low
                              else "lower the learning rate")))
        if badges:
            out[lid] = badges
    return out
