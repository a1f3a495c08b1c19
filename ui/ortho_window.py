"""Any raster layer of the project as the orthophoto: the windows around the photos' priors, read through
the layer's own QGIS provider (a GDAL file, WMS/WMTS, XYZ tiles, a service behind QGIS's authentication
manager), written as GeoTIFFs that the engine reads like any file. Credentials stay in QGIS.

A local raster file of GDAL's is handed to the engine as it is (:func:`needs_window` is False). For any
other layer, each prior gets a square window around it: the search radius plus half the diagonal of the
model's crop (the engine's search covers radius + half a crop footprint, in any rotation) plus a margin,
read at half the model's ground resolution (the engine then reads it decimated, averaging pixels), in the
layer's CRS, as the layer renders it (RGBA). Several windows are mosaicked by a VRT written here (same CRS,
same pixel grid). QGIS API and the standard library only: :func:`snapshot` copies what is needed of the
layer on the main thread (its provider and renderer cloned), :func:`write_windows` reads on a task's thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsDistanceArea,
    QgsFeatureSource,
    QgsMapLayer,
    QgsPointXY,
    QgsRasterBlockFeedback,
    QgsRasterDataProvider,
    QgsRasterFileWriter,
    QgsRasterLayer,
    QgsRasterPipe,
    QgsRasterRenderer,
    QgsRectangle,
)

from ..core.errors import Loc2Error
from ..core.types import IMAGE_SUFFIXES, aerial_crop, search_radius_m
from .layers import LayerChoiceError, orthophoto_file

WINDOW_MARGIN_M = 8.0  # beyond the search: the engine's read margin and the resampling's neighbours
OVERSAMPLE = 2.0  # window pixels per model crop pixel (along each axis)
MAX_WINDOW_PX = 8192  # longest side of one window; a larger one would be a search radius of ~500 m
_WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")


class WindowError(Loc2Error):
    """A window that cannot be read from the layer; the message names the layer and the problem."""


@dataclass(frozen=True)
class Prior:
    """A photo's prior position (WGS84 degrees) and its search radius (metres)."""

    lon: float
    lat: float
    radius_m: float


@dataclass
class LayerSnapshot:
    """What reading a layer's windows needs, copied from the layer on the main thread: its name, CRS, a
    clone of its data provider (credentials and authentication configuration included) and of its renderer."""

    name: str
    crs: QgsCoordinateReferenceSystem
    provider: QgsRasterDataProvider
    renderer: QgsRasterRenderer | None
    context: QgsCoordinateTransformContext


def snapshot(layer: QgsRasterLayer, context: QgsCoordinateTransformContext) -> LayerSnapshot:
    """Copy ``layer`` for :func:`write_windows` (call on the main thread); WindowError when it cannot be read."""
    if not layer.isValid() or layer.dataProvider() is None:
        raise WindowError(
            f"{layer.name}: the layer is not valid ({layer.error().summary() or layer.source()})"
        )
    if not layer.crs().isValid():
        raise WindowError(f"{layer.name}: the orthophoto layer has no coordinate reference system")
    provider = layer.dataProvider().clone()
    if provider is None:
        raise WindowError(f"{layer.name}: its data provider ({layer.providerType()}) cannot be copied")
    renderer = layer.renderer().clone() if layer.renderer() is not None else None
    return LayerSnapshot(layer.name(), QgsCoordinateReferenceSystem(layer.crs()), provider, renderer, context)


@dataclass(frozen=True)
class Grid:
    """The pixel grid of the windows in the layer's CRS: pixel size in CRS units along x and y."""

    res_x: float
    res_y: float

    def snap(self, rect: QgsRectangle) -> tuple[int, int, int, int]:
        """``rect`` grown to whole grid pixels: (first column, first row from the top, columns, rows), the
        rows counted downwards from y = 0."""
        c0 = math.floor(rect.xMinimum() / self.res_x)
        c1 = math.ceil(rect.xMaximum() / self.res_x)
        r0 = math.floor(-rect.yMaximum() / self.res_y)
        r1 = math.ceil(-rect.yMinimum() / self.res_y)
        return c0, r0, c1 - c0, r1 - r0

    def rectangle(self, c0: int, r0: int, cols: int, rows: int) -> QgsRectangle:
        return QgsRectangle(
            c0 * self.res_x, -(r0 + rows) * self.res_y, (c0 + cols) * self.res_x, -r0 * self.res_y
        )


def needs_window(layer: QgsRasterLayer) -> bool:
    """Whether the engine cannot open the layer's source itself: anything but a raster file of GDAL's on
    disk (web services, XYZ tiles, rasters of other providers)."""
    if layer.providerType() != "gdal":
        return True
    return not Path(layer.source().split("|")[0]).is_file()


def orthophoto_choice(
    layer: QgsMapLayer | None, context: QgsCoordinateTransformContext
) -> tuple[str, LayerSnapshot | None]:
    """What a job reads for the chosen orthophoto layer (main thread): ``(file, None)`` for a raster file of
    GDAL's (the engine opens it), ``("", snapshot)`` for any other raster layer (its windows are written on
    the task's thread by :func:`write_windows`). LayerChoiceError says what is wrong."""
    if isinstance(layer, QgsRasterLayer) and needs_window(layer):
        try:
            return "", snapshot(layer, context)
        except WindowError as exc:
            raise LayerChoiceError(str(exc)) from None
    return orthophoto_file(layer), None


def prior_of(lon: float, lat: float, option_m: float | None, uncertainty_m: float | None) -> Prior:
    """A photo's prior with the radius the engine will search (:func:`core.types.search_radius_m`)."""
    return Prior(float(lon), float(lat), search_radius_m(option_m, uncertainty_m))


def folder_priors(
    folder: str | Path, inspect: Callable[[str], dict | None], option_m: float | None
) -> list[Prior]:
    """The priors of a folder's photos (the files the engine takes: ``IMAGE_SUFFIXES``), each from
    ``inspect(photo)`` (the engine's ``inspect``: EXIF lon, lat, horizontal_error_m; None when unreadable);
    photos without a position are left to the engine, which reports them."""
    priors = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        info = inspect(str(path)) or {}
        if info.get("lon") is not None and info.get("lat") is not None:
            priors.append(prior_of(info["lon"], info["lat"], option_m, info.get("horizontal_error_m")))
    return priors


def layer_priors(
    source: QgsFeatureSource, option_m: float | None, context: QgsCoordinateTransformContext
) -> list[Prior]:
    """The priors of a point layer's features (their geometry, in WGS84)."""
    to_wgs84 = QgsCoordinateTransform(source.sourceCrs(), _WGS84, context)
    priors = []
    for feature in source.getFeatures():
        geometry = feature.geometry()
        if geometry is None or geometry.isEmpty():
            continue
        point = to_wgs84.transform(geometry.centroid().asPoint())
        priors.append(prior_of(point.x(), point.y(), option_m, None))
    return priors


def metres_per_unit(crs: QgsCoordinateReferenceSystem, point: QgsPointXY, context) -> tuple[float, float]:
    """Ground metres of one CRS unit along x and along y at ``point`` (in ``crs``), on the WGS84 ellipsoid."""
    measure = QgsDistanceArea()
    measure.setSourceCrs(crs, context)
    measure.setEllipsoid("WGS84")
    step = 1e-5 if crs.isGeographic() else 1.0  # about a metre (or a foot) either way
    east = measure.measureLine(point, QgsPointXY(point.x() + step, point.y())) / step
    north = measure.measureLine(point, QgsPointXY(point.x(), point.y() + step)) / step
    if not (east > 0 and north > 0 and math.isfinite(east) and math.isfinite(north)):
        raise WindowError(f"{crs.authid() or crs.description()}: no ground distance at {point.toString()}")
    return east, north


def window_half_m(radius_m: float, model: str) -> float:
    """Half the side of a prior's window, ground metres: the search radius, half the diagonal of the
    model's crop, and :data:`WINDOW_MARGIN_M`."""
    footprint_m, _ = aerial_crop(model)
    return radius_m + footprint_m / 2 * math.sqrt(2) + WINDOW_MARGIN_M


def plan_windows(
    layer: LayerSnapshot, priors: Sequence[Prior], model: str
) -> tuple[Grid, list[tuple[int, int, int, int]]]:
    """The grid (pixel size in the layer's CRS: half the model's ground pixel at the first prior) and each
    prior's window on it (first column, first row, columns, rows); overlapping windows are kept apart."""
    if not priors:
        raise WindowError(f"{layer.name}: no photo prior to read a window around")
    crs, context = layer.crs, layer.context
    to_layer = QgsCoordinateTransform(_WGS84, crs, context)
    _, model_m_per_px = aerial_crop(model)
    ground_res_m = model_m_per_px / OVERSAMPLE
    grid = None
    windows = []
    for prior in priors:
        try:
            centre = to_layer.transform(QgsPointXY(prior.lon, prior.lat))
        except Exception as exc:  # noqa: BLE001 - QgsCsException: the prior is outside the CRS's domain
            raise WindowError(
                f"{layer.name}: the prior {prior.lon:.6f}, {prior.lat:.6f} is not in its CRS ({exc})"
            ) from None
        east_m, north_m = metres_per_unit(crs, centre, context)
        if grid is None:
            grid = Grid(ground_res_m / east_m, ground_res_m / north_m)
        half = window_half_m(prior.radius_m, model)
        rect = QgsRectangle(
            centre.x() - half / east_m,
            centre.y() - half / north_m,
            centre.x() + half / east_m,
            centre.y() + half / north_m,
        )
        window = grid.snap(rect)
        if max(window[2], window[3]) > MAX_WINDOW_PX:
            raise WindowError(
                f"{layer.name}: a search radius of {prior.radius_m:g} m needs a {window[2]}×{window[3]} pixel "
                f"window; at most {MAX_WINDOW_PX} pixels across (a smaller search radius)"
            )
        windows.append(window)
    return grid, windows


def write_window(
    layer: LayerSnapshot,
    grid: Grid,
    window: tuple[int, int, int, int],
    path: Path,
    feedback: QgsRasterBlockFeedback | None = None,
) -> Path:
    """Render ``window`` of the layer (a clone of the snapshot's provider, its renderer) into the RGBA
    GeoTIFF ``path``; WindowError naming the layer when nothing could be written."""
    provider = layer.provider.clone()
    pipe = QgsRasterPipe()
    if provider is None or not pipe.set(provider):
        raise WindowError(f"{layer.name}: its data provider cannot be read")
    if layer.renderer is not None:
        pipe.set(layer.renderer.clone())
    writer = QgsRasterFileWriter(str(path))
    writer.setOutputFormat("GTiff")
    writer.setCreateOptions(["COMPRESS=DEFLATE", "TILED=YES"])
    c0, r0, cols, rows = window
    extent = grid.rectangle(c0, r0, cols, rows)
    error = writer.writeRaster(pipe, cols, rows, extent, layer.crs, layer.context, feedback)
    if error != QgsRasterFileWriter.NoError or not path.is_file():
        detail = (
            provider.error().summary()
            if provider.error().isEmpty() is False
            else f"writer error {int(error)}"
        )
        raise WindowError(f"{layer.name}: the window around the photo could not be read ({detail})")
    if feedback is not None and feedback.isCanceled():
        raise WindowError(f"{layer.name}: reading the window was cancelled")
    return path


def write_mosaic(
    grid: Grid, windows: Sequence[tuple[int, int, int, int]], files: Sequence[Path], crs_wkt: str, path: Path
) -> Path:
    """A VRT (4 bands, RGBA) placing each window's GeoTIFF on the common grid; transparent elsewhere."""
    c0 = min(w[0] for w in windows)
    r0 = min(w[1] for w in windows)
    cols = max(w[0] + w[2] for w in windows) - c0
    rows = max(w[1] + w[3] for w in windows) - r0
    origin_x, origin_y = c0 * grid.res_x, -r0 * grid.res_y
    bands = []
    for band, colour in enumerate(("Red", "Green", "Blue", "Alpha"), start=1):
        sources = "".join(
            f"""
    <SimpleSource>
      <SourceFilename relativeToVRT="1">{escape(file.name)}</SourceFilename>
      <SourceBand>{band}</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{w[2]}" ySize="{w[3]}"/>
      <DstRect xOff="{w[0] - c0}" yOff="{w[1] - r0}" xSize="{w[2]}" ySize="{w[3]}"/>
    </SimpleSource>"""
            for w, file in zip(windows, files, strict=True)
        )
        bands.append(
            f"""
  <VRTRasterBand dataType="Byte" band="{band}">
    <ColorInterp>{colour}</ColorInterp>{sources}
  </VRTRasterBand>"""
        )
    path.write_text(
        f"""<VRTDataset rasterXSize="{cols}" rasterYSize="{rows}">
  <SRS>{escape(crs_wkt)}</SRS>
  <GeoTransform>{origin_x!r}, {grid.res_x!r}, 0, {origin_y!r}, 0, {-grid.res_y!r}</GeoTransform>{"".join(bands)}
</VRTDataset>
""",
        encoding="utf-8",
    )
    return path


def write_windows(
    layer: LayerSnapshot,
    priors: Sequence[Prior],
    model: str,
    folder: Path,
    is_canceled: Callable[[], bool] | None = None,
) -> Path:
    """The file the engine reads for ``layer``: one GeoTIFF around the single prior, or a VRT mosaic of one
    GeoTIFF per prior, written in ``folder``. WindowError names the layer and what went wrong."""
    folder.mkdir(parents=True, exist_ok=True)
    grid, windows = plan_windows(layer, priors, model)
    feedback = QgsRasterBlockFeedback()
    files = []
    for i, window in enumerate(windows):
        if is_canceled is not None and is_canceled():
            raise WindowError(f"{layer.name}: reading the windows was cancelled")
        files.append(write_window(layer, grid, window, folder / f"window_{i:04d}.tif", feedback))
    if len(files) == 1:
        return files[0]
    return write_mosaic(grid, windows, files, layer.crs.toWkt(), folder / "windows.vrt")
