"""Checks of a design's generative settings (engine.generative_spec) against its layers. No torch."""
from __future__ import annotations

from engine.spec import Problem, Spec


def validate_generative(spec: Spec, data_info) -> list[Problem]:
    g = spec.generative
    out: list[Problem] = []
    if g is None:
        return out
    if g.is_autoencoder:
        lay = spec.layer(g.bottleneck) if g.bottleneck else None
        if lay is None:
            out.append(Problem("generative.bottleneck", f"names no layer ({g.bottleneck!r:.40}) - choose the layer whose "
                                                        "output is the latent code, e.g. the narrowest Dense"))
        vae_layers = [x.id for x in spec.layers if x.kind == "VAESample"]
        if g.kind == "vae" and not vae_layers:
            out.append(Problem("generative.kind", "a VAE needs a VAESample layer as its bottleneck - add one after a "
                                                  "Dense with 2 x the latent size"))
        if g.kind == "vae" and lay is not None and lay.kind != "VAESample" and vae_layers:
            out.append(Problem("generative.bottleneck", f"a VAE's bottleneck is its VAESample layer ({vae_layers[0]})"))
        if g.kind == "autoencoder" and vae_layers:
            out.append(Problem(vae_layers[0], "VAESample needs the design's kind to be vae (its KL term must join the loss)"))
    elif g.is_gan:
        if g.target == "drawn" and len(g.points) < 2:
            out.append(Problem("generative.points", "draw at least 2 points of the target in the GAN view, or choose "
                                                    "another target"))
    return out
