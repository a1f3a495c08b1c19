"""What a reader needs of a raster before reading its pixels (:class:`RasterHeader`), read from an open
dataset once; kept as JSON for remote sources so that reopening one needs no request (:mod:`.ortho_sources`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyproj
import rasterio
from rasterio.enums import ColorInterp

Palette = tuple[tuple[int, int, int], ...]  # 256 (r, g, b) rows of a paletted band's colour table


@dataclass(frozen=True)
class RasterHeader:
    """What :class:`~.ortho.Orthophoto` needs of a dataset before reading pixels: its size (pixels), affine
    geotransform (GDAL order: x0, dx, rx, y0, ry, dy; CRS units), horizontal CRS (WKT), band data types,
    whether it has overviews, and the bands that make its RGB image (1-based indexes, a (256, 3) palette
    as nested lists or None, whether the values need the percentile stretch)."""

    width: int
    height: int
    geotransform: tuple[float, ...]
    crs_wkt: str
    dtypes: tuple[str, ...]
    has_overviews: bool
    band_indexes: tuple[int, ...]
    palette: Palette | None
    stretch: bool

    def to_json(self) -> str:
        """The header as a JSON object."""
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> RasterHeader:
        """The header written by :meth:`to_json`; raises ValueError (or KeyError, TypeError) when malformed."""
        d = json.loads(text)
        palette = d["palette"]
        return cls(
            int(d["width"]),
            int(d["height"]),
            tuple(float(v) for v in d["geotransform"]),
            str(d["crs_wkt"]),
            tuple(str(v) for v in d["dtypes"]),
            bool(d["has_overviews"]),
            tuple(int(v) for v in d["band_indexes"]),
            None if palette is None else tuple(tuple(int(c) for c in row) for row in palette),
            bool(d["stretch"]),
        )


def read_header(ds: rasterio.io.DatasetReader, crs: pyproj.CRS) -> RasterHeader:
    """The :class:`RasterHeader` of an open dataset whose horizontal CRS is ``crs``."""
    indexes, palette, stretch = _plan_bands(ds)
    return RasterHeader(
        width=ds.width,
        height=ds.height,
        geotransform=tuple(ds.transform.to_gdal()),
        crs_wkt=crs.to_wkt(),
        dtypes=tuple(ds.dtypes),
        has_overviews=bool(ds.overviews(1)),
        band_indexes=indexes,
        palette=palette,
        stretch=stretch,
    )


def _plan_bands(ds: rasterio.io.DatasetReader) -> tuple[tuple[int, ...], Palette | None, bool]:
    """Which bands form the RGB image (colour interpretation first; 1-based indexes), the palette of a
    paletted band, and whether the values need the percentile stretch (not 8-bit)."""
    interp = list(ds.colorinterp)
    non_alpha = [i + 1 for i, ci in enumerate(interp) if ci != ColorInterp.alpha] or [1]
    uint8 = ds.dtypes[non_alpha[0] - 1] == "uint8"
    rgb = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    if all(ci in interp for ci in rgb):
        return tuple(interp.index(ci) + 1 for ci in rgb), None, not uint8
    if len(non_alpha) >= 3:
        return tuple(non_alpha[:3]), None, not uint8
    band = non_alpha[0]
    if interp[band - 1] == ColorInterp.palette and uint8:
        try:
            cmap = ds.colormap(band)
        except ValueError:
            cmap = None
        if cmap:
            lut = [(0, 0, 0)] * 256
            for k, rgba in cmap.items():
                if 0 <= k < 256:
                    lut[k] = tuple(int(c) for c in rgba[:3])
            return (band,), tuple(lut), False
    return (band,), None, not uint8
