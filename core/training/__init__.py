"""Weakly supervised training from poses only (method §7): ``data`` (training views rendered from synthetic
cities), ``loss`` (VCE + InfoNCE) and ``trainer`` (the loop, checkpoints; ``loc2 train``)."""
