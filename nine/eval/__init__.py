"""Evaluation: distribution-matching statistics, downstream probes, disentanglement scores, and the
metrics of a trained run (:mod:`nine.eval.report`)."""
