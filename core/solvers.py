"""The pose solvers a user can choose, by key, with their labels (torch-free, so the QGIS side can list them
without loading torch; :func:`loc2.core.ransac.solver_settings` turns a key into RANSAC settings)."""

from __future__ import annotations

# key -> (short label, long label); the order is the order of the dialog's combo and the Processing enum
SOLVER_LABELS: dict[str, tuple[str, str]] = {
    "precise": (
        "Precise",
        "Precise (scale gate for metric depth; least-squares polish over all matches)",
    ),
    "published": ("Published (the paper's protocol)", "Published (the paper's RANSAC protocol exactly)"),
}
SOLVERS: tuple[str, ...] = tuple(SOLVER_LABELS)
DEFAULT_SOLVER = SOLVERS[0]
