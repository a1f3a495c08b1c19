"""Deterministic synthetic georeferenced cities: height field, orthophoto, panoramas, pinhole photos, depth.

One integer seed gives one city (a new seed is an unseen city): a street grid with asphalt, lane markings,
crosswalks, stop lines and arrows, raised sidewalks (kerb 0.15 m), buildings 5–25 m tall with flat or gable
roofs, rooftop boxes, per-building façade colours and window patterns, round tree canopies and parked cars.
The world is a 2.5-D height field: one height (metres) per square cell, plus a top-down RGB albedo. Tree
canopies are the one exception: the height field (and the orthophoto) holds their upper halves as domes, while
ground-level rendering casts rays against ellipsoidal canopies over trunks, so one sees under street trees.

Renders: the orthophoto (GeoTIFF) and aerial crops from the shaded top-down image; panoramas and pinhole
photos by vectorised ray casting (every image column is a vertical plane: the height field is sampled once
per column, the first sample above each ray comes from a running maximum and one sorted search, then
bisection; tops are solved exactly, walls to ≈ 1–2 mm); depth PNGs in the published formats; JPEGs with EXIF
GPS; whole benchmark folders (:func:`~.datasets.generate_dataset`) and in-memory training pairs
(:func:`~.datasets.sample_training_pair`).

Frames and units:

* **City local frame**: metres east and north of the city's south-west corner, along the axes of the
  projected CRS (grid east / grid north). It maps to CRS coordinates exactly:
  ``xy_crs = origin_xy + xy_local_m``. Horizontal lengths in this frame are CRS (grid) metres; true ground
  metres differ by the projection's scale factor k (≈ 0.99961 at the default site, UTM 32N near Zurich).
* **Cells**: row 0 is the northern edge; cell (row i, col j) covers east ∈ [j·c, (j+1)·c],
  north ∈ [size − (i+1)·c, size − i·c] (c = ``cell_m``), like the orthophoto's pixels.
* **Street frame** (internal): the street grid is rotated by ``rotation_deg`` (counter-clockwise) about the
  city centre; buildings are rectangles in that frame.
* **Headings** (parameters and outputs): degrees clockwise from TRUE north, [0, 360). Rendering happens in the
  CRS grid; a true bearing b has the grid bearing ``b − γ`` where γ is PROJ's meridian convergence
  (``pyproj.Proj(crs).get_factors(lon, lat).meridian_convergence``). Sign verified with pyproj: moving a point
  due north along its meridian near Zurich (8.54° E, west of the 9° E central meridian) moves it towards grid
  bearing +0.338°, and PROJ reports γ = −0.338° there, so grid bearing = true bearing − γ.
* **Depth**: true ground metres along the ray (the renderer marches in ground metres and converts steps to
  grid metres with k and γ of the camera's position). Panorama depth is radial, pinhole depth is z-depth;
  NaN for sky and for rays with no hit within ``max_range_m``.
* **Aerial frame** (see :mod:`loc2.core.geometry`): metres from the crop centre, x down, y right; the crop's
  up direction points to the true-north heading ``up_heading_deg`` and its footprint is true ground metres,
  exactly as :meth:`loc2.core.ortho.Orthophoto.crop` cuts crops from the written GeoTIFF.

Modules: ``layout`` (streets, lots, buildings, trees, cars), ``raster`` (painting them into the height field
and the top-down image, sun and shadows), ``frames`` (the city's frames and CRS), ``tracer`` (the ray
caster), ``city`` (:class:`~.city.SyntheticCity`), ``writers`` (JPEG with EXIF) and ``datasets`` (benchmark
folders, training pairs, errors against the truth).
"""
