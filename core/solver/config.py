"""The pose solvers a user can choose and their settings, option by option.

Standard library only: the QGIS side lists the solvers (``SOLVER_LABELS``) without loading torch, and
``core.types.JobOptions`` checks a solver name against ``SOLVERS``. ``SOLVER_CONFIGS`` turns a name into a
:class:`SolverConfig`; :meth:`SolverConfig.for_photo` keeps of it what applies to one photo.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

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

# The precise solver's additions to the published one:
# with metric depth the alignment's scale should be ≈ 1, so hypotheses and refinements outside this range
# are look-alikes that fit only by shrinking or stretching the ground layout;
METRIC_SCALE_RANGE = (0.8, 1.25)
# the kept pose is re-solved over all of P's matches near it, with these shrinking radii (metres);
POLISH_RADII_M = (2.5, 1.5, 1.0)
# with metric depth, a panorama's pose is chosen without the ground tokens lifted nearer than this to the
# camera (metres): the road just around it is plain asphalt and lane markings that repeat along the street,
# and its many tokens outvoted the few distinctive ones, so a look-alike place along the same street won
# (docs/experiments.md, the failure study). The polish and the refinement use every token again.
NEAR_GROUND_M = 5.0

# How RANSAC's kept hypothesis is refined on its inliers (``SolverConfig.refinement``):
# "published": the release's rule (method §6, §10): while the inlier count of the pose being refined grows,
#   re-solve on its inliers and replace it by the re-solve, unchecked;
# "checked": a re-solve is kept only when its own inlier count grows (and its scale is in ``scale_range``).
REFINEMENTS: tuple[str, ...] = ("published", "checked")


@dataclass(frozen=True)
class SolverConfig:
    """How the pose is solved from the matching probabilities P (method §6). The defaults are the paper's
    protocol (:data:`PUBLISHED`); :data:`PRECISE` adds the options after ``direct_samples``.

    The published protocol:

    * ``rounds`` (20): RANSAC rounds; each draws its own sample of correspondences.
    * ``samples_per_round`` (8,192): distinct (aerial, ground) correspondences drawn ∝ P per round.
    * ``hypotheses_per_round`` (100): minimal sets per round, each drawn ∝ P within the round's sample.
    * ``minimal_set`` (3): correspondences per hypothesis.
    * ``soft_threshold_m`` (5 m): a hypothesis scores Σ sigmoid(β(soft_threshold_m − residual)),
      β = 5 / soft_threshold_m, over its round's sample.
    * ``inlier_threshold_m`` (2.5 m): residual below which a correspondence is an inlier (the refinement,
      the inlier count and the ratio).
    * ``refinements`` (4): re-solves on the inliers at most.
    * ``refinement`` ("published"): the rule of those re-solves (``REFINEMENTS``): "published" replaces the
      pose by the re-solve on its inliers while the inlier count of the pose being refined grows (≥ 3 and
      more than the step before; 3 before the first step), without checking the re-solve; "checked" keeps a
      re-solve only when its own inlier count grows (:func:`loc2.core.solver.ransac.refine_pose`).
    * ``with_scale`` (True): scale-aware alignment (needed for relative depth).
    * ``ransac`` (True): False solves once, weighted by P, on ``direct_samples`` correspondences
      (:func:`loc2.core.solver.ransac.direct_pose`; faster, less robust; the options below do not apply).
    * ``direct_samples`` (1,024): correspondences of that one solve.

    The precise solver's additions (docs/experiments.md says why each):

    * ``dense_grids`` (False): a panorama also goes through the backbone rolled by half a token right, down
      and both (``geometry.cameras.TOKEN_SHIFTS``; models with a pixel-centred token grid only).
    * ``scale_range`` (None): (low, high) scales a hypothesis or refinement may have; metric depth only
      (:meth:`for_photo`). None accepts any.
    * ``choose_beyond_m`` (None): sample, score and refine the hypotheses only on ground tokens lifted at least
      this far from the camera, metres (unless under a tenth of P's mass lies beyond); metric-depth
      panoramas only. None uses every token.
    * ``polish_radii_m`` (()): then weighted re-solves over ALL of P's matches within these shrinking radii,
      metres (:func:`loc2.core.solver.refine.polish_pose`). () skips it.
    * ``likelihood`` (False): finally move the pose to the most probable one under all of P
      (:func:`loc2.core.solver.refine.maximum_likelihood_pose`, the scale kept in ``scale_range``; after a
      choice without the near ground, kept only if it moved the position at most ``refine.MAX_SHIFT_M``).
    * ``likelihood_unit_scale`` (False): that refinement solves at scale 1 with kernels shaped like each
      token's footprint; flat-ground panoramas only (flat ground is exact on the road and too far for what
      stands on it, which pulls a free scale to about 0.85).
    """

    rounds: int = 20
    samples_per_round: int = 8192
    hypotheses_per_round: int = 100
    minimal_set: int = 3
    soft_threshold_m: float = 5.0
    inlier_threshold_m: float = 2.5
    refinements: int = 4
    refinement: str = "published"
    with_scale: bool = True
    ransac: bool = True
    direct_samples: int = 1024
    dense_grids: bool = False
    scale_range: tuple[float, float] | None = None
    choose_beyond_m: float | None = None
    polish_radii_m: tuple[float, ...] = ()
    likelihood: bool = False
    likelihood_unit_scale: bool = False

    def __post_init__(self):
        if self.refinement not in REFINEMENTS:
            raise ValueError(f"unknown refinement {self.refinement!r}; use one of {', '.join(REFINEMENTS)}")

    def for_photo(self, metric_depth: bool, panorama: bool, flat_ground: bool) -> SolverConfig:
        """The options that apply to one photo: the scale gate needs depth in metres (depth maps, flat
        ground); choosing without the near ground needs that and a panorama (a pinhole photo sees the near
        ground in one direction only, as a large share of its few tokens, and its failures were not along a
        street); the unit-scale refinement needs a panorama on flat ground."""
        return dataclasses.replace(
            self,
            scale_range=self.scale_range if metric_depth else None,
            choose_beyond_m=self.choose_beyond_m if metric_depth and panorama else None,
            likelihood_unit_scale=self.likelihood_unit_scale and flat_ground and panorama,
        )

    def replace(self, **changes) -> SolverConfig:
        """A copy with some options changed."""
        return dataclasses.replace(self, **changes)


PUBLISHED = SolverConfig()
PRECISE = SolverConfig(
    refinement="checked",
    dense_grids=True,
    scale_range=METRIC_SCALE_RANGE,
    choose_beyond_m=NEAR_GROUND_M,
    polish_radii_m=POLISH_RADII_M,
    likelihood=True,
    likelihood_unit_scale=True,
)
SOLVER_CONFIGS: dict[str, SolverConfig] = {"precise": PRECISE, "published": PUBLISHED}


def solver_config(name: str) -> SolverConfig:
    """The configuration of a solver name (``SOLVERS``); ValueError naming the known ones otherwise."""
    try:
        return SOLVER_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown solver {name!r}; use one of {', '.join(SOLVERS)}") from None
