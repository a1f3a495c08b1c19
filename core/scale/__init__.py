"""City and country scale: a job on a Ray cluster (``ray_engine.py``), batches of photos on the same
orthophoto tile (``plan.py``) and results as partitioned GeoParquet merged on request (``parts.py``).

Ray is an optional extra (``pip install 'loc2[ray]'``); only ``ray_engine.py`` imports it, when run.
"""
