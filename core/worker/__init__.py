"""The engine as a worker process for the QGIS plugin: ``protocol`` (shared with the plugin, standard
library only) and ``server`` (``loc2 worker``)."""
