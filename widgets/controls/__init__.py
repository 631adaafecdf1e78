"""Run controls: the training toolbar and status."""
