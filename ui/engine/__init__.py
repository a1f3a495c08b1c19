"""The QGIS side of the engine: where its Python is (``environment``), the worker client (``client``)
and the managed environment's installer (``installer``). Standard library and QGIS only."""
