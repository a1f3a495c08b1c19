"""Frames, cameras, token grids, lifting and the pose type (method §5–6).

Frames, all in metres:

* **ground** (BEV) frame: origin at the camera, ``x`` points backwards (the camera looks along −x), ``y`` to
  the camera's right. Panorama columns therefore run clockwise seen from above.
* **aerial** frame: origin at the centre of the aerial image (a crop of the orthophoto, or a benchmark
  tile), ``x`` down the image, ``y`` to its right. A crop's up direction points to the true-north heading
  it was cut with (north for a north-up crop).
* **local** frame: metres east and north of a point on a local transverse Mercator (``frames.py``).
* **crs**: the orthophoto's own coordinates (easting/longitude, northing/latitude).

Names say the quantity, its frame and its unit: ``xy_aerial_m`` (points in the aerial frame, metres),
``xy_ground_m``, ``xy_crs``, ``heading_deg`` (degrees clockwise from TRUE north), ``heading_aerial_deg``
(degrees clockwise from the aerial image's up direction). A pose is a :class:`~.pose.Similarity2D` that maps
ground onto aerial points, ``xy_aerial_m ≈ s·R·xy_ground_m + t``: ``t`` is the camera's position in the
aerial frame.
"""
