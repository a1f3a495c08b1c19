"""Core LayerTables as QGIS features and memory layers, their styles and the shipped QML files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsExpression,
    QgsExpressionContext,
    QgsGraduatedSymbolRenderer,
    QgsProject,
    QgsRuleBasedRenderer,
    QgsSingleSymbolRenderer,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant
from qgis_helpers import clear_project, qgis_app

qgis_app()

from loc2.core.results import PhotoResult, layer_tables  # noqa: E402
from loc2.ui import styles  # noqa: E402
from loc2.ui.layers import (  # noqa: E402
    add_result_group,
    attribute_value,
    empty_result_layers,
    memory_layer,
    prior_table,
    qgs_fields,
    result_layers,
)

CRS = "EPSG:32632"
X0, Y0 = 465_060.0, 5_246_060.0


def _result(ok: bool = True, n_inliers: int = 12) -> PhotoResult:
    crs_wkt = QgsCoordinateReferenceSystem(CRS).toWkt()
    rng = np.random.default_rng(0)
    if not ok:
        return PhotoResult.failed(
            "/data/b.jpg", "b.jpg: no pose", prior_lon=8.54, prior_lat=47.37, crs_wkt=crs_wkt
        )
    angles = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    layout = np.stack([X0 + 20 * np.cos(angles), Y0 + 15 * np.sin(angles)], axis=1)
    return PhotoResult(
        photo="/data/a.jpg",
        status="ok",
        x=X0,
        y=Y0,
        heading_deg=93.0,
        prior_x=X0 - 3.0,
        prior_y=Y0 + 4.0,
        prior_heading_deg=90.0,
        scale=1.02,
        num_inliers=n_inliers,
        inlier_ratio=0.3,
        crs_wkt=crs_wkt,
        inliers_xy=np.stack([X0 + rng.uniform(-30, 30, n_inliers), Y0 + rng.uniform(-30, 30, n_inliers)], 1),
        inliers_uv=rng.uniform(0, 300, (n_inliers, 2)),
        inliers_prob=np.linspace(0.05, 0.9, n_inliers),
        inliers_resid_m=rng.uniform(0, 2, n_inliers),
        layout_xy=layout,
        matches_ground_xy=layout[:5],
        matches_aerial_xy=layout[:5] + 1.0,
        matches_prob=np.linspace(0.9, 0.5, 5),
    )


def test_fields_values_and_null():
    fields = qgs_fields([("photo", "str"), ("n", "int"), ("x", "float")])
    assert fields.names() == ["photo", "n", "x"]
    assert [f.type() for f in fields] == [QVariant.String, QVariant.Int, QVariant.Double]
    assert attribute_value(math.nan, "float") is None and attribute_value(None, "str") is None
    assert attribute_value(3.6, "int") == 4 and attribute_value(np.float32(2.5), "float") == 2.5
    with pytest.raises(ValueError, match="kind"):
        qgs_fields([("bad", "blob")])


def test_memory_layers_keep_geometry_attributes_and_crs():
    crs = QgsCoordinateReferenceSystem(CRS)
    tables = layer_tables([_result(), _result(ok=False)], include_matches=True)
    poses = memory_layer(tables["poses"], crs)
    assert poses.isValid() and poses.crs().authid() == CRS
    assert poses.geometryType() == QgsWkbTypes.PointGeometry and poses.featureCount() == 2
    assert poses.fields().names() == [n for n, _ in tables["poses"].fields]
    by_status = {f["status"]: f for f in poses.getFeatures()}
    ok = by_status["ok"]
    assert ok.geometry().asPoint().x() == pytest.approx(X0) and ok["heading"] == pytest.approx(93.0)
    assert ok["inliers"] == 12 and ok["geom_src"] == "corrected"
    failed = by_status["failed"]
    assert failed["heading"] is None or str(failed["heading"]) == "NULL"  # NaN → NULL
    assert failed["geom_src"] == "prior" and not failed.geometry().isEmpty()
    inliers = memory_layer(tables["inliers"], crs)
    assert inliers.featureCount() == 12
    assert sorted(round(f["prob"], 3) for f in inliers.getFeatures())[0] == 0.05
    outline = memory_layer(tables["outlines"], crs)
    assert outline.geometryType() == QgsWkbTypes.PolygonGeometry and outline.featureCount() == 1
    feature = next(outline.getFeatures())
    assert feature.geometry().area() == pytest.approx(math.pi * 20 * 15, rel=0.05)
    shifts = memory_layer(tables["shifts"], crs)
    line = next(shifts.getFeatures()).geometry().asPolyline()
    assert (line[0].x(), line[0].y()) == (X0 - 3.0, Y0 + 4.0) and (line[1].x(), line[1].y()) == (X0, Y0)
    assert memory_layer(tables["matches"], crs).featureCount() == 5


def test_prior_table_places_rows_at_the_prior():
    tables = layer_tables([_result()])
    priors = prior_table(tables["poses"])
    ((geom, attrs),) = priors.rows
    assert (geom.x, geom.y) == (X0 - 3.0, Y0 + 4.0) and attrs["prior_head"] == 90.0


def test_result_layers_are_styled_as_specified():
    layers = {
        role: layer
        for role, _, layer in result_layers(layer_tables([_result()]), QgsCoordinateReferenceSystem(CRS))
    }
    assert set(layers) == {"poses", "priors", "shifts", "inliers", "outlines"}
    poses = layers["poses"]
    assert isinstance(poses.renderer(), QgsRuleBasedRenderer)
    arrow = poses.renderer().rootRule().children()[0].symbol()
    angle = arrow.dataDefinedAngle()
    assert angle.isActive() and '"heading"' in angle.expressionString()
    assert poses.labelsEnabled() and "shift_m" in poses.labeling().settings().fieldName
    # corrected poses coloured by confidence class; which rule draws a feature is decided by its attributes
    rules = poses.renderer().rootRule().children()
    assert [r.label() for r in rules[:3]] == [
        f"Corrected pose, {c} confidence" for c in ("high", "medium", "low")
    ]
    assert len({r.symbol().color().name() for r in rules[:3]}) == 3 and rules[3].isElse()
    pose = next(poses.getFeatures())
    context = QgsExpressionContext()
    context.setFields(poses.fields())
    for confidence, colour in styles.POSE_CONFIDENCE_COLOURS.items():
        pose["confidence"] = confidence
        context.setFeature(pose)
        drawn = [r for r in rules[:3] if QgsExpression(r.filterExpression()).evaluate(context)]
        assert [r.symbol().color().name() for r in drawn] == [colour], confidence
    prior_arrow = layers["priors"].renderer().rootRule().children()[0].symbol()
    assert '"prior_head"' in prior_arrow.dataDefinedAngle().expressionString()
    assert prior_arrow.color().red() == prior_arrow.color().green() == prior_arrow.color().blue()  # grey
    graduated = layers["inliers"].renderer()
    assert isinstance(graduated, QgsGraduatedSymbolRenderer) and graduated.classAttribute() == "prob"
    assert len(graduated.ranges()) == styles.INLIER_CLASSES
    colours = {r.symbol().color().name() for r in graduated.ranges()}
    assert len(colours) == styles.INLIER_CLASSES  # a colour ramp, not one colour
    fill = layers["outlines"].renderer().symbol()
    assert (
        isinstance(layers["outlines"].renderer(), QgsSingleSymbolRenderer) and 0 < fill.color().alpha() < 255
    )


@pytest.mark.parametrize("role", styles.ROLES)
def test_shipped_qml_styles_load(role):
    layer = empty_result_layers(QgsCoordinateReferenceSystem(CRS))[role]
    path = styles.style_path(role)
    assert path.is_file(), f"{path} missing: regenerate with styles.write_style_files"
    message, ok = layer.loadNamedStyle(str(path))
    assert ok, message
    coded = QgsVectorLayer(layer.source(), "coded", "memory")
    styles.apply_style(coded, role)
    assert type(layer.renderer()) is type(coded.renderer())
    if role == "poses":
        assert layer.labelsEnabled()


def test_add_result_group_is_all_or_nothing():
    clear_project()
    project = QgsProject.instance()
    built = result_layers(layer_tables([_result()]), QgsCoordinateReferenceSystem(CRS))
    group = add_result_group(project, "Loc2 — a.jpg", built)
    assert project.layerTreeRoot().children()[0] is group
    assert [n.name() for n in group.children()] == [name for _, name, _ in built]
    assert len(project.mapLayers()) == len(built)

    clear_project()
    broken = result_layers(layer_tables([_result()]), QgsCoordinateReferenceSystem(CRS))
    broken.append(("bad", "Bad", QgsVectorLayer("not a layer", "bad", "ogr")))
    with pytest.raises(RuntimeError, match="not valid"):
        add_result_group(project, "Loc2 — broken", broken)
    assert project.mapLayers() == {} and project.layerTreeRoot().children() == []
