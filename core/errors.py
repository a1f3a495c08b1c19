"""Errors raised by the Loc2 engine. Every error names the file or input and the problem."""

from __future__ import annotations


class Loc2Error(Exception):
    """Base class of every error the engine raises on bad input."""


class CheckpointError(Loc2Error):
    """A checkpoint whose entries do not match the network it is loaded into."""


class ImageError(Loc2Error):
    """An image of the wrong type, shape or value range."""


class DepthError(Loc2Error):
    """A missing, unreadable or mis-sized depth map."""


class PhotoError(Loc2Error):
    """A street-level photo that cannot be read, or lacks what is needed."""


class OrthoError(Loc2Error):
    """An orthophoto that cannot be used (no CRS, rotation terms, prior outside, ...)."""


class OrthoFetchError(OrthoError):
    """An orthophoto service (COG over HTTP, WMTS, WMS, XYZ tiles) whose data could not be fetched: an HTTP
    error, a timeout or a refused password. The message names the service and the status."""


class PriorError(Loc2Error):
    """A prior position file (CSV, point layer) that cannot be used."""


class ExportError(Loc2Error):
    """An output that cannot be written (not writable, already holds results, ...)."""


class DatasetError(Loc2Error):
    """A benchmark dataset whose layout or labels are not as expected."""


class ModelNotFoundError(Loc2Error):
    """Weights that are not on disk (and cannot be downloaded now)."""
