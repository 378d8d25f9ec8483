"""nine: Noise-Injected deep InfoMax (NINE), the reproducible companion to Butakov et al., ICLR 2025."""

__version__ = "0.2.0"
