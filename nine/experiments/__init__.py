"""Experiments built on the core and the store: the noise sweeps, generative modelling, outlier detection."""
