"""The pose from the matching probabilities (method §6): ``config`` (which solver, its settings; standard
library only, so the QGIS side lists the solvers without loading torch), ``procrustes`` (the weighted
closed-form alignment), ``sampling`` (correspondences drawn ∝ P), ``ransac`` (hypotheses, scores and the
sampled refinement), ``refine`` (the polish and the maximum-likelihood refinement over all of P) and
``confidence`` (inlier ratio → confidence class, and calibrating a model's thresholds).

This file imports nothing: importing ``loc2.core.solver.config`` must not load torch.
"""
