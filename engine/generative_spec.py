"""The design-level settings of generative models: autoencoders, VAEs and GANs.

A design without them is a classifier, exactly as before. With them it is one of:

* ``autoencoder`` / ``vae`` - the target is the input itself (reconstruction loss ``mse`` or
  ``bce`` on pixels); ``bottleneck`` names the layer whose output is the latent code. A VAE's
  bottleneck is a VAESample layer (mean and log-variance in, a sample out) whose KL term is
  weighted by ``beta``.
* ``gan`` - two named sub-networks in the one layer graph, each the set of layers connected to
  its Input (``networks``: name -> Input layer id), trained in alternation with their own
  optimiser settings on a 2-D ``target`` distribution (``points`` when the user drew it).

Plain data only, importing nothing of the engine, so engine.spec can read and write it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

GENERATIVE_KINDS = ("autoencoder", "vae", "gan")
RECON_LOSSES = ("mse", "bce")
GAN_TARGETS = ("ring", "moons", "gaussians", "line", "drawn")
GAN_NETWORKS = ("generator", "discriminator")
GAN_OPTIMIZERS = ("adam", "sgd", "rmsprop")
MAX_POINTS = 2000


@dataclass
class GenerativeSpec:
    kind: str = "autoencoder"
    # autoencoder / vae
    bottleneck: str = ""
    recon_loss: str = "mse"
    beta: float = 1.0
    # gan
    networks: dict[str, str] = field(default_factory=dict)  # "generator"/"discriminator" -> Input layer id
    noise_dim: int = 2
    target: str = "ring"
    points: list[tuple[float, float]] = field(default_factory=list)  # the drawn target
    g_optimizer: str = "adam"
    g_lr: float = 0.002
    g_steps: int = 1
    d_optimizer: str = "adam"
    d_lr: float = 0.002
    d_steps: int = 1

    @property
    def is_autoencoder(self) -> bool:
        return self.kind in ("autoencoder", "vae")

    @property
    def is_gan(self) -> bool:
        return self.kind == "gan"


_FIELDS = {"bottleneck": str, "recon_loss": str, "beta": float, "noise_dim": int, "target": str,
           "g_optimizer": str, "g_lr": float, "g_steps": int, "d_optimizer": str, "d_lr": float, "d_steps": int}
_CHOICES = {"recon_loss": RECON_LOSSES, "target": GAN_TARGETS, "g_optimizer": GAN_OPTIMIZERS,
            "d_optimizer": GAN_OPTIMIZERS}
_RANGES = {"beta": (0.0, 100.0), "noise_dim": (1, 64), "g_lr": (1e-6, 1.0), "d_lr": (1e-6, 1.0),
           "g_steps": (1, 20), "d_steps": (1, 20)}


def to_dict(g: GenerativeSpec) -> dict:
    out: dict[str, Any] = {"kind": g.kind}
    if g.is_autoencoder:
        out.update(bottleneck=g.bottleneck, recon_loss=g.recon_loss)
        if g.kind == "vae":
            out["beta"] = float(g.beta)
    else:
        out.update(networks=dict(g.networks), noise_dim=g.noise_dim, target=g.target,
                   g_optimizer=g.g_optimizer, g_lr=float(g.g_lr), g_steps=g.g_steps,
                   d_optimizer=g.d_optimizer, d_lr=float(g.d_lr), d_steps=g.d_steps)
        if g.points:
            out["points"] = [[round(float(x), 4), round(float(y), 4)] for x, y in g.points]
    return out


def from_dict(raw: Any) -> tuple[GenerativeSpec | None, list[tuple[str, str]]]:
    """(settings, [(where, message)]); hostile input gets messages, never exceptions."""
    bad: list[tuple[str, str]] = []
    if not isinstance(raw, dict):
        return None, [("generative", "must be an object such as {\"kind\": \"autoencoder\", ...}")]
    kind = raw.get("kind")
    if kind not in GENERATIVE_KINDS:
        return None, [("generative.kind", f"must be one of {', '.join(GENERATIVE_KINDS)}, got {str(kind)[:40]!r}")]
    g = GenerativeSpec(kind=kind)
    for key, value in raw.items():
        where = f"generative.{str(key)[:40]}"
        if key == "kind":
            continue
        if key == "networks":
            if not (isinstance(value, dict) and all(k in GAN_NETWORKS and isinstance(v, str) for k, v in value.items())):
                bad.append((where, 'must be {"generator": Input layer id, "discriminator": Input layer id}'))
            else:
                g.networks = dict(value)
            continue
        if key == "points":
            ok = (isinstance(value, list) and len(value) <= MAX_POINTS
                  and all(isinstance(p, list) and len(p) == 2 and all(_finite(c) for c in p) for p in value))
            if not ok:
                bad.append((where, f"must be a list of at most {MAX_POINTS} [x, y] number pairs"))
            else:
                g.points = [(float(p[0]), float(p[1])) for p in value]
            continue
        want = _FIELDS.get(key)
        if want is None:
            bad.append((where, "unknown setting - remove it"))
            continue
        if want is float and _finite(value):
            value = float(value)
        elif want is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, want) or isinstance(value, bool) or (want is not str and not _finite(value)):
            bad.append((where, f"must be a {'number' if want is float else 'whole number' if want is int else 'text'}"))
            continue
        if key in _CHOICES and value not in _CHOICES[key]:
            bad.append((where, f"must be one of {', '.join(_CHOICES[key])}"))
            continue
        lo_hi = _RANGES.get(key)
        if lo_hi and not lo_hi[0] <= value <= lo_hi[1]:
            bad.append((where, f"{value} is outside {lo_hi[0]:g}..{lo_hi[1]:g}"))
            continue
        setattr(g, key, value)
    return g, bad


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) < 2**53


def network_members(spec, name: str) -> list[str]:
    """Ids of the layers of GAN sub-network ``name``: everything connected (either way) to its Input."""
    g = spec.generative
    start = g.networks.get(name) if g is not None else None
    ids = {lay.id for lay in spec.layers}
    if start not in ids:
        return []
    nbrs: dict[str, set[str]] = {i: set() for i in ids}
    for e in spec.edges:
        if e.src in ids and e.dst in ids:
            nbrs[e.src].add(e.dst)
            nbrs[e.dst].add(e.src)
    seen, stack = set(), [start]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(nbrs[n])
    return [lay.id for lay in spec.layers if lay.id in seen]


def sub_spec(spec, name: str):
    """The GAN sub-network ``name`` as a design of its own (same training settings, no generative part)."""
    members = set(network_members(spec, name))
    sub = spec.copy()
    sub.generative = None
    sub.name = f"{spec.name} - {name}"
    sub.layers = [lay for lay in sub.layers if lay.id in members]
    sub.edges = [e for e in sub.edges if e.src in members and e.dst in members]
    return sub
