"""Any raster layer of the project as the orthophoto: the windows around the photos' priors, read through
the layer's own QGIS provider (a GDAL file, WMS/WMTS, XYZ tiles, a service behind QGIS's authentication
manager), written as GeoTIFFs that the engine reads like any file. Credentials stay in QGIS.

A local raster file of GDAL's is handed to the engine as it is (:func:`needs_window` is False). For any
other layer, each prior gets a square window around it: the search radius plus half the diagonal of the
model's crop (the engine's search covers radius + half a crop footprint, in any rotation) plus a margin,
read at half the model's ground resolution (the engine then reads it decimated, averaging pixels), in the
layer's CRS, as the layer renders it (RGBA). Several windows are mosaicked by a VRT written here (same CRS,
same pixel grid). QGIS API and the standard library only; run it on a task's thread (the provider is
cloned, never used across threads).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsDistanceArea,
    QgsPointXY,
    QgsRasterBlockFeedback,
    QgsRasterFileWriter,
    QgsRasterLayer,
    QgsRasterPipe,
    QgsRectangle,
)

from ..core.types import aerial_crop

WINDOW_MARGIN_M = 8.0  # beyond the search: the engine's read margin and the resampling's neighbours
OVERSAMPLE = 2.0  # window pixels per model crop pixel (along each axis)
MAX_WINDOW_PX = 8192  # longest side of one window; a larger one would be a search radius of ~500 m
_WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")


class WindowError(ValueError):
    """A window that cannot be read from the layer; the message names the layer and the problem."""


@dataclass(frozen=True)
class Prior:
    """A photo's prior position (WGS84 degrees) and its search radius (metres)."""

    lon: float
    lat: float
    radius_m: float


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
    layer: QgsRasterLayer, priors: Sequence[Prior], model: str, context: QgsCoordinateTransformContext
) -> tuple[Grid, list[tuple[int, int, int, int]]]:
    """The grid (pixel size in the layer's CRS: half the model's ground pixel at the first prior) and each
    prior's window on it (first column, first row, columns, rows); overlapping windows are kept apart."""
    if not priors:
        raise WindowError(f"{layer.name()}: no photo prior to read a window around")
    crs = layer.crs()
    if not crs.isValid():
        raise WindowError(f"{layer.name()}: the orthophoto layer has no coordinate reference system")
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
                f"{layer.name()}: the prior {prior.lon:.6f}, {prior.lat:.6f} is not in its CRS ({exc})"
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
                f"{layer.name()}: a search radius of {prior.radius_m:g} m needs a {window[2]}×{window[3]} pixel "
                f"window; at most {MAX_WINDOW_PX} pixels across (a smaller search radius)"
            )
        windows.append(window)
    return grid, windows


def write_window(
    layer: QgsRasterLayer,
    grid: Grid,
    window: tuple[int, int, int, int],
    path: Path,
    context: QgsCoordinateTransformContext,
    feedback: QgsRasterBlockFeedback | None = None,
) -> Path:
    """Render ``window`` of the layer (its provider cloned, its renderer) into the RGBA GeoTIFF ``path``;
    WindowError naming the layer when nothing could be written."""
    provider = layer.dataProvider().clone()
    if provider is None:
        raise WindowError(f"{layer.name()}: its data provider cannot be used outside the map")
    pipe = QgsRasterPipe()
    if not pipe.set(provider):
        raise WindowError(f"{layer.name()}: its data provider cannot be read ({layer.providerType()})")
    renderer = layer.renderer()
    if renderer is not None:
        pipe.set(renderer.clone())
    writer = QgsRasterFileWriter(str(path))
    writer.setOutputFormat("GTiff")
    writer.setCreateOptions(["COMPRESS=DEFLATE", "TILED=YES"])
    c0, r0, cols, rows = window
    extent = grid.rectangle(c0, r0, cols, rows)
    error = writer.writeRaster(pipe, cols, rows, extent, layer.crs(), context, feedback)
    if error != QgsRasterFileWriter.NoError or not path.is_file():
        detail = (
            provider.error().summary()
            if provider.error().isEmpty() is False
            else f"writer error {int(error)}"
        )
        raise WindowError(f"{layer.name()}: the window around the photo could not be read ({detail})")
    if feedback is not None and feedback.isCanceled():
        raise WindowError(f"{layer.name()}: reading the window was cancelled")
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
    layer: QgsRasterLayer,
    priors: Sequence[Prior],
    model: str,
    folder: Path,
    context: QgsCoordinateTransformContext,
    is_canceled: Callable[[], bool] | None = None,
) -> Path:
    """The file the engine reads for ``layer``: one GeoTIFF around the single prior, or a VRT mosaic of one
    GeoTIFF per prior, written in ``folder``. WindowError names the layer and what went wrong."""
    folder.mkdir(parents=True, exist_ok=True)
    grid, windows = plan_windows(layer, priors, model, context)
    feedback = QgsRasterBlockFeedback()
    files = []
    for i, window in enumerate(windows):
        if is_canceled is not None and is_canceled():
            raise WindowError(f"{layer.name()}: reading the windows was cancelled")
        files.append(write_window(layer, grid, window, folder / f"window_{i:04d}.tif", context, feedback))
    if len(files) == 1:
        return files[0]
    return write_mosaic(grid, windows, files, layer.crs().toWkt(), folder / "windows.vrt")
