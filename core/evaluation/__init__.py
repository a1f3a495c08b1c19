"""The paper's evaluation on VIGOR and KITTI (``loc2 eval``): ``datasets`` (the samples, as the published
evaluation forms them; ``vigor``, ``kitti``), ``metrics`` (errors, summaries, the report) and ``inference``
(localizing samples, batched on a GPU)."""
