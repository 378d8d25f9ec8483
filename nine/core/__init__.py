"""The method: the encoder and its heads, critics, InfoNCE, one objective per method (NINE and the
methods it is compared with), the training loop, checkpoints, and training across processes."""
