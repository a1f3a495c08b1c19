"""Map styles of the Loc2 result layers, built in code; ``resources/styles/*.qml`` are saved from these.

Roles (one per result layer): ``poses`` (corrected pose: a dot and a wedge rotated by the data-defined ``heading``
field, degrees clockwise from north, green / amber / red by its ``confidence`` (high / medium / low),
labelled with shift, inliers and confidence; a photo without a pose is a grey cross
at its prior), ``priors`` (grey dot and heading wedge rotated by ``prior_head``; a grey dot when the prior has no heading),
``shifts`` (purple prior → corrected line with an arrow head), ``inliers`` (points graduated by matching
probability ``prob``, light to dark blue), ``outlines`` (translucent polygon), ``matches`` (thin lines).

Marker rotation is relative to the map's up direction, so on a projected map the wedges are off by the grid
convergence (a fraction of a degree to a few degrees); the ``heading`` attributes are exact.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsClassificationEqualInterval,
    QgsClassificationQuantile,
    QgsFillSymbol,
    QgsGradientColorRamp,
    QgsGraduatedSymbolRenderer,
    QgsLineSymbol,
    QgsMarkerLineSymbolLayer,
    QgsMarkerSymbol,
    QgsPalLayerSettings,
    QgsProperty,
    QgsRuleBasedRenderer,
    QgsSimpleMarkerSymbolLayerBase,
    QgsSingleSymbolRenderer,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtCore import QPointF
from qgis.PyQt.QtGui import QColor

from ..core.types import (
    CONFIDENCE_HIGH,
    CONFIDENCE_LOW,
    CONFIDENCE_MEDIUM,
    GEOM_CORRECTED,
    LAYER_INLIERS,
    LAYER_MATCHES,
    LAYER_OUTLINES,
    LAYER_POSES,
    LAYER_PRIORS,
    LAYER_SHIFTS,
)

STYLES_DIR = Path(__file__).resolve().parent.parent / "resources" / "styles"
ROLES = (LAYER_POSES, LAYER_PRIORS, LAYER_SHIFTS, LAYER_INLIERS, LAYER_OUTLINES, LAYER_MATCHES)

POSE_RED = "#e31a1c"
# corrected poses by confidence class (the model's inlier-ratio thresholds): traffic-light colours
POSE_CONFIDENCE_COLOURS = {CONFIDENCE_HIGH: "#1a9641", CONFIDENCE_MEDIUM: "#ffbf00", CONFIDENCE_LOW: POSE_RED}
PRIOR_GREY = "#8c8c8c"
SHIFT_PURPLE = "#7b3294"  # not a confidence colour: the shift line is not a verdict
OUTLINE_CYAN = "#1fb4d2"
MATCH_YELLOW = "#ffd92f"
INLIER_LOW, INLIER_HIGH = "#c6dbef", "#08306b"  # matching probability P, low → high
INLIER_CLASSES = 5

POSE_LABEL = (
    f"CASE WHEN \"geom_src\" = '{GEOM_CORRECTED}' "
    'THEN format(\'%1 m, %2 inliers, %3\', format_number("shift_m", 1), "inliers", "confidence") '
    'ELSE "status" END'
)
# The heading marker: a dot on the camera and a wedge ahead of it pointing along the heading, drawn with a dark
# outline so that it stands out on any orthophoto and from the inlier points (readable at 1:250–1:1,000).
POSE_DOT_MM, POSE_WEDGE_MM = 3.6, 6.0
PRIOR_DOT_MM, PRIOR_WEDGE_MM = 2.8, 4.6
MARKER_OUTLINE = "#202020"


def _heading_marker(
    colour: str, dot_mm: float, wedge_mm: float, angle_field: str, outline: str
) -> QgsMarkerSymbol:
    """A dot with a wedge ahead of it, the whole marker rotated by ``angle_field`` (degrees clockwise from
    north; a missing value draws it pointing north)."""
    common = {"color": colour, "outline_color": outline, "outline_width": "0.5", "joinstyle": "miter"}
    symbol = QgsMarkerSymbol.createSimple({**common, "name": "triangle", "size": str(wedge_mm)})
    symbol.symbolLayer(0).setShape(QgsSimpleMarkerSymbolLayerBase.Shape.Triangle)
    symbol.symbolLayer(0).setOffset(QPointF(0.0, -(dot_mm / 2 + wedge_mm * 0.38)))  # rotates with the marker
    dot = QgsMarkerSymbol.createSimple({**common, "name": "circle", "size": str(dot_mm)})
    symbol.appendSymbolLayer(dot.symbolLayer(0).clone())
    symbol.setDataDefinedAngle(QgsProperty.fromExpression(f'coalesce("{angle_field}", 0)'))
    return symbol


def _labels(expression: str, size_pt: float = 9.0) -> QgsVectorLayerSimpleLabeling:
    settings = QgsPalLayerSettings()
    settings.fieldName = expression
    settings.isExpression = True
    settings.placement = QgsPalLayerSettings.Placement.AroundPoint
    settings.dist = 3.0  # mm beside the point: the label never covers the heading arrow
    text = QgsTextFormat()
    text.setSize(size_pt)
    text.setColor(QColor("#202020"))
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setSize(1.0)
    buffer.setColor(QColor("#ffffff"))
    text.setBuffer(buffer)
    settings.setFormat(text)
    return QgsVectorLayerSimpleLabeling(settings)


def _rule(symbol, expression: str | None, label: str) -> QgsRuleBasedRenderer.Rule:
    rule = QgsRuleBasedRenderer.Rule(symbol, 0, 0, expression or "", label)
    if expression is None:
        rule.setIsElse(True)
    return rule


def style_poses(layer: QgsVectorLayer) -> None:
    """A dot and a heading wedge at the corrected pose, coloured by its ``confidence`` (green high, amber
    medium, red low), a grey cross where no pose was found."""
    root = QgsRuleBasedRenderer.Rule(None)
    corrected = f"\"geom_src\" = '{GEOM_CORRECTED}'"
    for level, colour in POSE_CONFIDENCE_COLOURS.items():
        test = (
            f"\"confidence\" = '{level}'"
            if level != CONFIDENCE_LOW
            else f"\"confidence\" NOT IN ('{CONFIDENCE_HIGH}', '{CONFIDENCE_MEDIUM}')"
        )
        label = f"Corrected pose, {level} confidence (wedge: heading)"
        marker = _heading_marker(colour, POSE_DOT_MM, POSE_WEDGE_MM, "heading", MARKER_OUTLINE)
        root.appendChild(_rule(marker, f"{corrected} AND {test}", label))
    cross = QgsMarkerSymbol.createSimple(
        {
            "name": "cross2",
            "color": PRIOR_GREY,
            "outline_color": PRIOR_GREY,
            "outline_width": "0.6",
            "size": "4",
        }
    )
    root.appendChild(_rule(cross, None, "No pose (shown at the prior)"))
    layer.setRenderer(QgsRuleBasedRenderer(root))
    layer.setLabeling(_labels(POSE_LABEL))
    layer.setLabelsEnabled(True)


def style_priors(layer: QgsVectorLayer) -> None:
    """A smaller grey dot and wedge rotated by ``prior_head``; a grey dot when the prior heading is unknown."""
    root = QgsRuleBasedRenderer.Rule(None)
    label = "Prior position and heading (GPS, EXIF)"
    marker = _heading_marker(PRIOR_GREY, PRIOR_DOT_MM, PRIOR_WEDGE_MM, "prior_head", "#ffffff")
    root.appendChild(_rule(marker, '"prior_head" IS NOT NULL', label))
    dot = QgsMarkerSymbol.createSimple(
        {"name": "circle", "color": PRIOR_GREY, "outline_color": "#ffffff", "size": "3"}
    )
    root.appendChild(_rule(dot, None, "Prior position (no heading)"))
    layer.setRenderer(QgsRuleBasedRenderer(root))


def style_shifts(layer: QgsVectorLayer) -> None:
    """Purple line from the prior to the corrected position, with an arrow head at the corrected end."""
    symbol = QgsLineSymbol.createSimple(
        {"line_color": SHIFT_PURPLE, "line_width": "0.6", "capstyle": "round"}
    )
    head = QgsMarkerLineSymbolLayer()
    head.setPlacement(QgsMarkerLineSymbolLayer.Placement.LastVertex)
    head.setRotateSymbols(True)
    marker = QgsMarkerSymbol.createSimple(
        {"name": "filled_arrowhead", "color": SHIFT_PURPLE, "outline_style": "no", "size": "3"}
    )
    marker.symbolLayer(0).setShape(QgsSimpleMarkerSymbolLayerBase.Shape.ArrowHeadFilled)
    head.setSubSymbol(marker)
    symbol.appendSymbolLayer(head)
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


def _inlier_ramp() -> QgsGradientColorRamp:
    """Light to dark blue: apart from the confidence colours (green, amber, red) and the outline (cyan)."""
    return QgsGradientColorRamp(QColor(INLIER_LOW), QColor(INLIER_HIGH))


def style_inliers(layer: QgsVectorLayer) -> None:
    """Circles graduated by ``prob`` (light to dark blue, quantiles of the layer's values; 0…1 when empty),
    the legend reading "matching probability P 0.0012 – 0.0034"."""
    symbol = QgsMarkerSymbol.createSimple({"name": "circle", "outline_style": "no", "size": "2"})
    renderer = QgsGraduatedSymbolRenderer("prob")
    renderer.setSourceSymbol(symbol)
    ramp = _inlier_ramp()
    renderer.setSourceColorRamp(ramp)
    method = (
        QgsClassificationQuantile()
        if layer.featureCount() >= INLIER_CLASSES
        else QgsClassificationEqualInterval()
    )
    method.setLabelFormat("matching probability P %1 – %2")
    method.setLabelPrecision(4)
    renderer.setClassificationMethod(method)
    if layer.featureCount() >= INLIER_CLASSES:
        renderer.updateClasses(layer, INLIER_CLASSES)
    else:
        for i in range(INLIER_CLASSES):
            lo, hi = i / INLIER_CLASSES, (i + 1) / INLIER_CLASSES
            renderer.addClassLowerUpper(lo, hi)
    renderer.updateColorRamp(ramp.clone())
    layer.setRenderer(renderer)


def style_outlines(layer: QgsVectorLayer) -> None:
    """Translucent cyan fill with a solid outline."""
    fill = QColor(OUTLINE_CYAN)
    fill.setAlpha(70)
    symbol = QgsFillSymbol.createSimple(
        {"color": fill.name(QColor.NameFormat.HexArgb), "outline_color": OUTLINE_CYAN, "outline_width": "0.4"}
    )
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


def style_matches(layer: QgsVectorLayer) -> None:
    """Thin translucent yellow lines."""
    symbol = QgsLineSymbol.createSimple({"line_color": MATCH_YELLOW, "line_width": "0.2"})
    symbol.setOpacity(0.7)
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


_STYLERS = {
    LAYER_POSES: style_poses,
    LAYER_PRIORS: style_priors,
    LAYER_SHIFTS: style_shifts,
    LAYER_INLIERS: style_inliers,
    LAYER_OUTLINES: style_outlines,
    LAYER_MATCHES: style_matches,
}


def apply_style(layer: QgsVectorLayer, role: str) -> None:
    """Style ``layer`` as the result layer ``role`` (one of :data:`ROLES`)."""
    try:
        styler = _STYLERS[role]
    except KeyError:
        raise ValueError(f"unknown Loc2 layer role {role!r}; known: {', '.join(ROLES)}") from None
    styler(layer)
    layer.triggerRepaint()


def style_path(role: str) -> Path:
    """The shipped QML file of a role (load it onto exported layers in Layer Properties → Style)."""
    return STYLES_DIR / f"{role}.qml"


def write_style_beside(source: str, role: str) -> Path | None:
    """Save ``role``'s style with an exported layer (an OGR data source): a ``.qml`` beside a file layer,
    which QGIS loads with it; in a GeoPackage, its style table (as the layer's default). Returns the
    ``.qml`` written (None for a GeoPackage); OSError names what could not be written."""
    layer = QgsVectorLayer(source, role, "ogr")
    if not layer.isValid():
        raise OSError(f"QGIS cannot open the exported layer {source}")
    apply_style(layer, role)
    path = Path(source.split("|")[0])
    if path.suffix.lower() == ".gpkg":
        error = layer.saveStyleToDatabase(role, "Loc2 style", True, "")
        if error:
            raise OSError(f"cannot save the style of {source}: {error}")
        return None
    qml = path.with_suffix(".qml")
    message, ok = layer.saveNamedStyle(str(qml))
    if not ok:
        raise OSError(f"cannot write the style {qml}: {message}")
    return qml


def write_style_files(folder: Path, layers: dict[str, QgsVectorLayer]) -> list[Path]:
    """Save the style of each role as ``<folder>/<role>.qml`` from example layers (role → layer)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for role, layer in layers.items():
        apply_style(layer, role)
        path = folder / f"{role}.qml"
        message, ok = layer.saveNamedStyle(str(path))
        if not ok:
            raise OSError(f"cannot write the style {path}: {message}")
        written.append(path)
    return written
