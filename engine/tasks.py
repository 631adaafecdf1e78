"""Which trainer, data and probe a design needs: classification (engine.trainer), autoencoder
and VAE (engine.autoencoder) or GAN (engine.gan). The worker and the CLI ask here."""
from __future__ import annotations

from engine import datasets
from engine.spec import Spec


def is_gan(spec: Spec) -> bool:
    return spec.generative is not None and spec.generative.is_gan


def is_autoencoder(spec: Spec) -> bool:
    return spec.generative is not None and spec.generative.is_autoencoder


def load_data(spec: Spec, load=None):
    """The run's data; ``load`` (a cache's loader) reads ordinary datasets."""
    if is_gan(spec):
        from engine.gan_data import load_gan_data
        return load_gan_data(spec)
    return (load or datasets.load)(spec.dataset)


def make_trainer(spec: Spec, data, *, probe_options: dict | None = None, probe=None, probes_beside: bool = False,
                 **kw):
    """(trainer, probe) for the design; ``probe`` is the classifier's Prober, used for classifiers only.

    ``probes_beside``: compute the classifier's views on a second thread (engine.probe_thread).
    """
    if is_gan(spec):
        from engine.gan import GanProbe, GanTrainer
        gp = GanProbe(probe_options)
        return GanTrainer(spec, data, probe=gp, **kw), gp
    if is_autoencoder(spec):
        from engine.autoencoder import AutoencoderProbe, AutoencoderTrainer
        holder: list = []
        ap = AutoencoderProbe(data, spec, lambda: holder[0], probe_options)
        tr = AutoencoderTrainer(spec, data, probe=ap, **kw)
        holder.append(tr)
        return tr, ap
    from engine.trainer import Trainer
    return Trainer(spec, data, probe=probe, probes_beside=probes_beside, **kw), probe
