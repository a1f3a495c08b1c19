"""The engine's result GeoPackage as styled QGIS layers (OGR provider), their group, the shipped QML files
and the styles written beside exports."""

from __future__ import annotations

import math
from pathlib import Path

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
from qgis_helpers import clear_project, qgis_app

qgis_app()

from loc2.core.output.export import write_results  # noqa: E402
from loc2.core.output.results import PhotoResult  # noqa: E402
from loc2.ui import styles  # noqa: E402
from loc2.ui.layers import RESULT_LAYERS, add_result_group, open_result_layers  # noqa: E402

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
        inliers_xy_crs=np.stack(
            [X0 + rng.uniform(-30, 30, n_inliers), Y0 + rng.uniform(-30, 30, n_inliers)], 1
        ),
        inliers_uv=rng.uniform(0, 300, (n_inliers, 2)),
        inliers_prob=np.linspace(0.05, 0.9, n_inliers),
        inliers_resid_m=rng.uniform(0, 2, n_inliers),
        layout_xy_crs=layout,
        matches_ground_xy_crs=layout[:5],
        matches_aerial_xy_crs=layout[:5] + 1.0,
        matches_prob=np.linspace(0.9, 0.5, 5),
    )


@pytest.fixture
def sources(tmp_path) -> dict[str, str]:
    """The engine's GeoPackage of an ok and a failed result (written as the worker writes it)."""
    writer = write_results(tmp_path / "r.gpkg", [_result(), _result(ok=False)], include_matches=True)
    return writer.sources()


def _layers(sources) -> dict[str, QgsVectorLayer]:
    return dict(open_result_layers(sources))


def test_result_layers_come_from_the_engines_file_through_ogr(sources):
    layers = _layers(sources)
    assert list(layers) == ["poses", "priors", "shifts", "matches", "inliers", "outlines"]
    assert all(layer.providerType() == "ogr" and layer.crs().authid() == CRS for layer in layers.values())
    assert [layer.name() for layer in layers.values()] == [title for _, title in RESULT_LAYERS]
    poses = layers["poses"]
    assert poses.geometryType() == QgsWkbTypes.PointGeometry and poses.featureCount() == 2
    by_status = {f["status"]: f for f in poses.getFeatures()}
    ok = by_status["ok"]
    assert ok.geometry().asPoint().x() == pytest.approx(X0) and ok["heading"] == pytest.approx(93.0)
    assert ok["inliers"] == 12 and ok["geom_src"] == "corrected"
    failed = by_status["failed"]
    assert failed["heading"] is None or str(failed["heading"]) == "NULL"  # NaN → NULL
    assert failed["geom_src"] == "prior" and not failed.geometry().isEmpty()
    priors = {f["photo"]: f for f in layers["priors"].getFeatures()}
    prior = priors["/data/a.jpg"]
    assert (prior.geometry().asPoint().x(), prior.geometry().asPoint().y()) == (X0 - 3.0, Y0 + 4.0)
    assert prior["prior_head"] == 90.0 and "inliers" not in layers["priors"].fields().names()
    assert layers["inliers"].featureCount() == 12
    outline = next(layers["outlines"].getFeatures())
    assert outline.geometry().area() == pytest.approx(math.pi * 20 * 15, rel=0.05)
    line = next(layers["shifts"].getFeatures()).geometry().asPolyline()
    assert (line[0].x(), line[0].y()) == (X0 - 3.0, Y0 + 4.0) and (line[1].x(), line[1].y()) == (X0, Y0)
    assert layers["matches"].featureCount() == 5


def test_result_layers_are_styled_as_specified(sources):
    layers = _layers(sources)
    poses = layers["poses"]
    assert isinstance(poses.renderer(), QgsRuleBasedRenderer)
    arrow = poses.renderer().rootRule().children()[0].symbol()
    angle = arrow.dataDefinedAngle()
    assert angle.isActive() and '"heading"' in angle.expressionString()
    wedge, dot = (arrow.symbolLayer(i) for i in range(2))  # readable at 1:250-1:1,000
    assert wedge.size() >= 6.0 and dot.size() >= 3.5 and wedge.offset().y() < 0  # the wedge ahead of the dot
    label = poses.labeling().settings().fieldName
    assert poses.labelsEnabled() and "shift_m" in label and "confidence" in label
    # corrected poses coloured by confidence class; which rule draws a feature is decided by its attributes
    rules = poses.renderer().rootRule().children()
    assert [r.label() for r in rules[:3]] == [
        f"Corrected pose, {c} confidence (wedge: heading)" for c in ("high", "medium", "low")
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
    shift = layers["shifts"].renderer().symbol().color().name()
    assert shift not in styles.POSE_CONFIDENCE_COLOURS.values()  # a shift is not a verdict
    graduated = layers["inliers"].renderer()
    assert isinstance(graduated, QgsGraduatedSymbolRenderer) and graduated.classAttribute() == "prob"
    assert len(graduated.ranges()) == styles.INLIER_CLASSES
    assert all(r.label().startswith("matching probability P") for r in graduated.ranges())
    colours = {r.symbol().color().name() for r in graduated.ranges()}
    assert len(colours) == styles.INLIER_CLASSES and not colours & set(
        styles.POSE_CONFIDENCE_COLOURS.values()
    )
    fill = layers["outlines"].renderer().symbol()
    assert (
        isinstance(layers["outlines"].renderer(), QgsSingleSymbolRenderer) and 0 < fill.color().alpha() < 255
    )


@pytest.mark.parametrize("role", styles.ROLES)
def test_shipped_qml_styles_load_and_match_the_code(role, sources):
    layer = QgsVectorLayer(sources[role], role, "ogr")
    path = styles.style_path(role)
    assert path.is_file(), f"{path} missing: regenerate with styles.write_style_files"
    message, ok = layer.loadNamedStyle(str(path))
    assert ok, message
    coded = QgsVectorLayer(sources[role], "coded", "ogr")
    styles.apply_style(coded, role)
    assert type(layer.renderer()) is type(coded.renderer())
    if role == "poses":
        assert layer.labelsEnabled()
        shipped = [r.label() for r in layer.renderer().rootRule().children()]
        assert shipped == [r.label() for r in coded.renderer().rootRule().children()]


def test_styles_are_written_beside_exports(sources, tmp_path):
    from loc2.core.output.export import convert_output

    writer = convert_output(sources["poses"].split("|")[0], tmp_path / "out.shp")
    for role, source in writer.sources().items():
        qml = styles.write_style_beside(source, role)
        assert qml == tmp_path / f"out_{role}.qml" and qml.is_file()
        reopened = QgsVectorLayer(source, role, "ogr")  # QGIS loads the .qml beside the file by itself
        assert type(reopened.renderer()).__name__ == type(_layers(sources)[role].renderer()).__name__
    assert styles.write_style_beside(sources["poses"], "poses") is None  # a GeoPackage keeps it inside


def test_add_result_group_is_all_or_nothing(sources):
    clear_project()
    project = QgsProject.instance()
    built = open_result_layers(sources)
    group = add_result_group(project, "Loc2 — a.jpg", built)
    assert project.layerTreeRoot().children()[0] is group
    assert [n.name() for n in group.children()] == [layer.name() for _, layer in built]
    assert len(project.mapLayers()) == len(built)

    clear_project()
    broken = open_result_layers(sources)
    broken.append(("bad", QgsVectorLayer("not a layer", "bad", "ogr")))
    with pytest.raises(RuntimeError, match="not valid"):
        add_result_group(project, "Loc2 — broken", broken)
    assert project.mapLayers() == {} and project.layerTreeRoot().children() == []
    with pytest.raises(RuntimeError, match="cannot open"):
        open_result_layers({"poses": str(Path("/nonexistent/x.gpkg")) + "|layername=poses"})


def test_shipped_styles_are_the_code_styles(tmp_path, sources):
    """resources/styles/*.qml are what write_style_files makes now (regenerate them when a style changes)."""
    layers = {role: QgsVectorLayer(source, role, "ogr") for role, source in sources.items()}
    for path in styles.write_style_files(tmp_path, layers):
        shipped = styles.style_path(path.stem)
        assert _style_body(path) == _style_body(shipped), f"{shipped} is stale: regenerate it"


def _style_body(path) -> str:
    """A QML file in canonical XML (attributes sorted, also inside the XML that QGIS nests in attribute
    values: Qt writes them in a random order), without what changes between saves (rule and symbol keys,
    the QGIS version)."""
    import re
    import xml.etree.ElementTree as ET

    def canonical(text: str) -> str:
        text = re.sub(r"<!DOCTYPE[^>]*>", "", text)
        root = ET.fromstring(text)
        for element in root.iter():
            for name in ("key", "version", "id"):
                element.attrib.pop(name, None)
            for name, value in element.attrib.items():
                if value.lstrip().startswith("<symbol"):  # a symbol QGIS stores as XML text
                    element.attrib[name] = canonical(value)
        return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)

    return canonical(path.read_text(encoding="utf-8"))
