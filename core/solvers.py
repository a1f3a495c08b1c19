"""The pose solvers a user can choose, by key, with their labels (torch-free, so the QGIS side can list them
without loading torch; :func:`loc2.core.ransac.solver_settings` turns a key into RANSAC settings)."""

from __future__ import annotations

# key -> (short label, long label); the order is the order of the dialog's combo and the Processing enum
SOLVER_LABELS: dict[str, tuple[str, str]] = {
    "precise": (
        "Precise",
        "Precise (denser panorama tokens; scale gate for metric depth; refinement over all matches)",
    ),
    "published": ("Published (the paper's protocol)", "Published (the paper's RANSAC protocol exactly)"),
}
SOLVERS: tuple[str, ...] = tuple(SOLVER_LABELS)
DEFAULT_SOLVER = SOLVERS[0]
# what the solvers do, for people (the CLI's --help, the dialog's tooltip, the Processing help)
SOLVER_HELP = (
    "Precise (default) also runs a panorama through the backbone rolled by half a token sideways, down and both "
    "(models with a pixel-centred token grid, such as the demo model: twice as dense in azimuth and elevation), "
    "runs the published RANSAC, then with flat ground or depth maps in metres rejects poses "
    "whose scale is far from 1 (look-alike places that fit only by shrinking the ground layout) and chooses a "
    "panorama's pose without the ground within 5 m of the camera (plain road that repeats along the street), re-solves "
    "over all matches near the pose and moves it to the most probable pose under the whole matching "
    "distribution (sub-cell position, steadier heading; with flat ground at scale 1, where the road is exact, "
    "each token's kernel shaped like the ground it covers: long along its bearing, narrow across it). "
    "Published is the paper's protocol exactly."
)
