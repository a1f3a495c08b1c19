"""The size of the scale tests' scene (``tests/scale/conftest.py``): 40 photos on two orthophoto tiles."""

from __future__ import annotations

from loc2.benchmarks.scale import TILE_M

N_PHOTOS = 40
__all__ = ["N_PHOTOS", "TILE_M"]
