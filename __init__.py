"""Loc2 for QGIS: fine-grained cross-view localization of street-level photos on orthophotos.

QGIS loads this package as a plugin through :func:`classFactory`; the engine lives in ``loc2.core``
and never imports QGIS. Nothing heavy is imported here so the plugin loads even where torch is missing.
"""


def classFactory(iface):  # noqa: N802 - name required by QGIS
    """Create the plugin instance for QGIS."""
    from .loc2_plugin import Loc2Plugin

    return Loc2Plugin(iface)
