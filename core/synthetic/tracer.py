"""The ray caster of a synthetic city: panoramas and pinhole photos with their depth (vectorised: every image
column is a vertical plane, the height field sampled once per column, the first sample above each ray found
with a running maximum and one sorted search, then bisection; tree canopies intersected analytically). A
mixin of :class:`~.city.SyntheticCity`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry.cameras import Pinhole
from .layout import _HAZE, _SKY_HORIZON, _SKY_ZENITH, KIND_BUILDING, KIND_CAR, KIND_ROOF_BOX
from .raster import _sun_vector


@dataclass
class RayHits:
    """Per-pixel result of :meth:`SyntheticCity.trace` (NaN where a ray hits nothing within range).

    ``horizontal_m``: horizontal ground distance to the hit; ``radial_m``: distance along the ray (metres);
    ``hit_xy_m``: the hit point in the local frame (H, W, 2); ``hit_z_m``: its height; ``wall``: the ray hit
    a vertical face of the height field; ``tree_id``: index into ``city.trees`` of a canopy hit (else −1);
    ``camera_z_m``: the camera's height above the datum.
    """

    rgb: np.ndarray
    horizontal_m: np.ndarray
    radial_m: np.ndarray
    hit_xy_m: np.ndarray
    hit_z_m: np.ndarray
    wall: np.ndarray
    tree_id: np.ndarray
    camera_z_m: float


class RayTracer:
    """Ray casting of a :class:`~.city.SyntheticCity` (which holds the padded cell arrays it reads)."""

    def _cell_index(self, east: np.ndarray, north: np.ndarray) -> np.ndarray:
        """Flat indices into the padded (n+2)² arrays of the cells holding local points (border outside)."""
        n = self.n
        col = np.clip(np.floor(east * (1.0 / self.cell_m)), -1, n).astype(np.int64) + 1
        row = np.clip(np.floor((self.size_m - north) * (1.0 / self.cell_m)), -1, n).astype(np.int64) + 1
        return row * (n + 2) + col

    def trace(
        self,
        position_xy_m: tuple[float, float],
        heading_deg: float,
        bearing_offsets_rad: np.ndarray,
        tan_elevation: np.ndarray,
        camera_height_m: float = 1.6,
        max_range_m: float = 80.0,
    ) -> RayHits:
        """Cast one ray per pixel from a camera at a local point, ``camera_height_m`` above the ground there.

        Column w looks along the true bearing ``heading_deg`` + ``bearing_offsets_rad[w]`` (clockwise); a ray
        rises ``tan_elevation`` (shape (H, 1) or (H, W)) metres per horizontal metre. Every column is a vertical
        plane, so the height field is sampled once per column every ≈ 0.75 cell out to ``max_range_m`` (ground
        metres), the first sample that rises above each ray is found with a running maximum and one sorted
        search, and the hit is refined by bisection to a few millimetres. Tree canopies (ellipsoids) are
        intersected analytically.
        """
        p0 = np.asarray(position_xy_m, np.float64)
        gamma, k = self.grid_factors(p0)
        offsets = np.asarray(bearing_offsets_rad, np.float64)
        n_cols = offsets.size
        tau = np.broadcast_to(np.asarray(tan_elevation, np.float64), (np.shape(tan_elevation)[0], n_cols))
        n_rows = tau.shape[0]
        z0 = float(self.ground_height(p0)) + camera_height_m
        bearing = math.radians(heading_deg - gamma) + offsets  # grid bearings of the columns
        de, dn = k * np.sin(bearing), k * np.cos(bearing)  # grid metres per ground metre
        horiz, inside_hi, wall = self._terrain_hits(p0, z0, de, dn, k, tau, max_range_m)

        tree_id = self._trace_trees(p0, z0, k, bearing, tau, horiz, max_range_m)
        found = np.isfinite(horiz)
        hit_xy = np.full((n_rows, n_cols, 2), np.nan)
        hit_xy[..., 0] = np.where(found, p0[0] + de[None, :] * horiz, np.nan)
        hit_xy[..., 1] = np.where(found, p0[1] + dn[None, :] * horiz, np.nan)
        hit_z = np.where(found, z0 + tau * horiz, np.nan)
        wall &= tree_id < 0
        radial = np.where(found, horiz * np.sqrt(1.0 + tau * tau), np.nan)
        rgb = self._colours(
            p0, z0, k, tau, de, dn, (horiz, inside_hi, wall, tree_id, radial), (hit_xy, hit_z)
        )
        return RayHits(
            rgb=np.clip(rgb + 0.5, 0, 255).astype(np.uint8),
            horizontal_m=np.where(found, horiz, np.nan).astype(np.float32),
            radial_m=radial.astype(np.float32),
            hit_xy_m=hit_xy,
            hit_z_m=hit_z,
            wall=wall,
            tree_id=tree_id,
            camera_z_m=z0,
        )

    def _terrain_hits(
        self,
        p0: np.ndarray,
        z0: float,
        de: np.ndarray,
        dn: np.ndarray,
        k: float,
        tau: np.ndarray,
        max_range_m: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The height field's hits of the rays (rows × columns): horizontal distance in ground metres (inf:
        none within range), the far end of the bisection bracket (inside the hit cell; NaN: none) and
        whether the hit is a wall. ``de``, ``dn``: grid metres per ground metre of each column."""
        n_rows, n_cols = tau.shape
        step = 0.75 * self.cell_m / k
        n_steps = int(math.ceil(max_range_m / step))
        r = step * np.arange(1, n_steps + 1)
        idx = self._cell_index(p0[0] + de[:, None] * r[None, :], p0[1] + dn[:, None] * r[None, :])
        heights = self._height_pad.ravel()
        rise = np.maximum.accumulate((heights[idx] - z0) / r[None, :], axis=1)  # (W, K) non-decreasing
        offset_key = 4.0 * np.arange(n_cols)  # arctan ∈ (−π/2, π/2): columns stay apart and sorted
        keys = (np.arctan(rise) + offset_key[:, None]).ravel()
        cols = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
        first = np.searchsorted(keys, (np.arctan(tau) + offset_key[None, :]).ravel()).reshape(n_rows, n_cols)
        first -= cols * n_steps

        hv, hc = np.nonzero(first < n_steps)
        t = tau[hv, hc]
        lo = first[hv, hc] * step
        hi = lo + step
        for _ in range(max(5, int(math.ceil(math.log2(step / 0.0015))))):
            mid = 0.5 * (lo + hi)
            above = z0 + mid * t > heights[self._cell_index(p0[0] + de[hc] * mid, p0[1] + dn[hc] * mid)]
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        # The ray entered the higher cell through its side below the top: a wall. Otherwise it came down
        # onto a top surface, solved exactly (steep rays would magnify the bisection's horizontal error).
        top = heights[self._cell_index(p0[0] + de[hc] * hi, p0[1] + dn[hc] * hi)]
        is_wall = z0 + lo * t < top - 0.01
        r_hit = 0.5 * (lo + hi)
        down = ~is_wall & (t < -1e-9)
        r_hit[down] = np.clip((top[down] - z0) / t[down], lo[down], hi[down])
        horiz = np.full((n_rows, n_cols), np.inf)
        horiz[hv, hc] = r_hit
        inside_hi = np.full((n_rows, n_cols), np.nan)
        inside_hi[hv, hc] = hi
        wall = np.zeros((n_rows, n_cols), bool)
        wall[hv, hc] = is_wall

        return horiz, inside_hi, wall

    def _colours(
        self,
        p0: np.ndarray,
        z0: float,
        k: float,
        tau: np.ndarray,
        de: np.ndarray,
        dn: np.ndarray,
        hits: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        points: tuple[np.ndarray, np.ndarray],
    ) -> np.ndarray:
        """RGB (float, rows × columns × 3) of the rays: sky and ground beyond range, shaded terrain and tree
        hits, hazed with distance. ``hits``: (horizontal m, bracket end, wall, tree id, radial m);
        ``points``: the hits' local xy and height (metres)."""
        horiz, inside_hi, wall, tree_id, radial = hits
        hit_xy, hit_z = points
        found = np.isfinite(horiz)
        rgb = self._background(p0, z0, tau, de, dn)
        fv, fc = np.nonzero(found & (tree_id < 0))
        if fv.size:
            hi = inside_hi[fv, fc]
            idx_in = self._cell_index(p0[0] + de[fc] * hi, p0[1] + dn[fc] * hi)
            rgb[fv, fc] = self._shade_hits(
                hit_xy[fv, fc], hit_z[fv, fc], idx_in, wall[fv, fc], de[fc], dn[fc]
            )
        tv, tc = np.nonzero(tree_id >= 0)
        if tv.size:
            rgb[tv, tc] = self._shade_trees(hit_xy[tv, tc], hit_z[tv, tc], tree_id[tv, tc], k)
        haze = (1.0 - np.exp(-np.nan_to_num(radial[found]) / 450.0))[:, None]
        rgb[found] = rgb[found] * (1.0 - haze) + _HAZE * haze
        return rgb

    def _trace_trees(
        self,
        p0: np.ndarray,
        z0: float,
        k: float,
        bearing: np.ndarray,
        tau: np.ndarray,
        horiz: np.ndarray,
        max_range_m: float,
    ) -> np.ndarray:
        """Intersect the rays with the canopy ellipsoids; shortens ``horiz`` in place, returns tree ids (−1)."""
        tree_id = np.full(horiz.shape, -1, np.int32)
        trees = self._trees
        if trees is None:
            return tree_id
        offset = (trees["xy"] - p0) / k  # ground metres (the rotation γ is already in ``bearing``)
        dist = np.hypot(offset[:, 0], offset[:, 1])
        radius = trees["radius"] / k
        for j in np.flatnonzero(dist - radius < max_range_m):
            delta = bearing - math.atan2(offset[j, 0], offset[j, 1])
            along, across = dist[j] * np.cos(delta), dist[j] * np.sin(delta)
            cols = np.flatnonzero((np.abs(across) < radius[j]) & (along > -radius[j]))
            if cols.size == 0:
                continue
            a2 = (
                radius[j] ** 2 - across[cols] ** 2
            )  # squared half-width of the plane's cut through the canopy
            c2 = trees["half"][j] ** 2 * a2 / radius[j] ** 2  # squared half-height of that cut
            dz = z0 - trees["centre_z"][j]
            t = tau[:, cols]
            qa = 1.0 / a2 + t * t / c2
            qb = 2.0 * (-along[cols] / a2 + t * dz / c2)
            qc = along[cols] ** 2 / a2 + dz * dz / c2 - 1.0
            disc = qb * qb - 4.0 * qa * qc
            s = (-qb - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * qa)
            closer = (disc >= 0.0) & (s > 0.0) & (s < np.minimum(horiz[:, cols], max_range_m))
            if closer.any():
                horiz[:, cols] = np.where(closer, s, horiz[:, cols])
                tree_id[:, cols] = np.where(closer, j, tree_id[:, cols])
        return tree_id

    def _shade_trees(
        self, hit_xy: np.ndarray, hit_z: np.ndarray, tree_id: np.ndarray, k: float
    ) -> np.ndarray:
        """Foliage colour (N, 3): the tree's colour, sun shading from the ellipsoid's normal, leafy noise."""
        trees = self._trees
        d = (hit_xy - trees["xy"][tree_id]) / k
        r2 = (trees["radius"][tree_id] / k) ** 2
        normal = np.stack(
            [d[:, 0] / r2, d[:, 1] / r2, (hit_z - trees["centre_z"][tree_id]) / trees["half"][tree_id] ** 2]
        )
        normal /= np.linalg.norm(normal, axis=0)
        light = np.clip(np.tensordot(_sun_vector(), normal, axes=1), 0.0, 1.0)
        q = np.floor(np.stack([hit_xy[:, 0], hit_xy[:, 1], hit_z]) / 0.12)
        leaves = np.mod(np.sin(q[0] * 12.9898 + q[1] * 78.233 + q[2] * 37.719) * 43758.5453, 1.0)
        shade = (0.42 + 0.5 * light) * (0.75 + 0.5 * leaves)
        return trees["rgb"][tree_id] * shade[:, None].astype(np.float32)

    def _background(
        self, p0: np.ndarray, z0: float, tau: np.ndarray, de: np.ndarray, dn: np.ndarray
    ) -> np.ndarray:
        """Colours of rays without a hit: sky above the horizon, hazy distant ground below it. (H, W, 3)."""
        elev = np.arctan(tau)
        w = np.clip(elev / (math.pi / 2), 0.0, 1.0)[..., None] ** 0.6
        rgb = _SKY_HORIZON * (1.0 - w) + _SKY_ZENITH * w
        below = tau < 0
        if below.any():
            rr, cc = np.nonzero(below)
            dist = z0 / -tau[rr, cc]
            ground = self._top_pad.reshape(-1, 3)[
                self._cell_index(p0[0] + de[cc] * dist, p0[1] + dn[cc] * dist)
            ]
            haze = (1.0 - np.exp(-dist / 450.0))[:, None]
            rgb[rr, cc] = ground * (1.0 - haze) + _HAZE * haze
        return rgb.astype(np.float32)

    def _shade_hits(
        self,
        hit_xy: np.ndarray,
        z_hit: np.ndarray,
        idx_in: np.ndarray,
        wall: np.ndarray,
        e_dir: np.ndarray,
        n_dir: np.ndarray,
    ) -> np.ndarray:
        """RGB (N, 3) float of height-field hits: the top-down image on top surfaces, materials on walls."""
        out = self._top_pad.reshape(-1, 3)[idx_in].astype(np.float32)
        if not wall.any():
            return out
        w = np.flatnonzero(wall)
        kind = self._kind_pad.ravel()[idx_in[w]]
        albedo = self._albedo_pad.reshape(-1, 3)[idx_in[w]].astype(np.float32)
        top = self._height_pad.ravel()[idx_in[w]]
        z = z_hit[w]
        sun = _sun_vector()
        horiz = np.hypot(e_dir[w], n_dir[w])
        facing = np.clip(
            -(e_dir[w] * sun[0] + n_dir[w] * sun[1]) / horiz, 0.0, 1.0
        )  # normal ≈ towards camera
        colour = albedo * (0.55 + 0.35 * facing)[:, None]
        is_car = kind == KIND_CAR
        colour[is_car & (z > 0.95) & (z < top - 0.08)] = (38, 44, 54)
        colour[is_car & (z < 0.35)] = (25, 25, 27)
        colour[kind == KIND_ROOF_BOX] = 175.0 * (0.6 + 0.35 * facing[kind == KIND_ROOF_BOX])[:, None]
        is_bld = np.flatnonzero(kind == KIND_BUILDING)
        if is_bld.size:
            bid = self._bid_pad.ravel()[idx_in[w[is_bld]]]
            ok = bid >= 0
            colour[is_bld[ok]] = self._facade_colours(hit_xy[w[is_bld[ok]]], z[is_bld[ok]], bid[ok])
        out[w] = colour
        return out

    def _facade_colours(self, hit_xy: np.ndarray, z: np.ndarray, bid: np.ndarray) -> np.ndarray:
        """Façade colour with windows of wall hits on buildings ``bid`` at local points and heights ``z``."""
        uv = self.local_to_street(hit_xy)
        rect = self._facades["rect"][bid]
        dist = np.abs(np.stack([uv[:, 0] - rect[:, 0], uv[:, 0] - rect[:, 1], uv[:, 1] - rect[:, 2],
                                uv[:, 1] - rect[:, 3]], axis=1))  # fmt: skip
        edge = np.argmin(dist, axis=1)  # 0: −u wall, 1: +u wall, 2: −v wall, 3: +v wall
        along = np.where(edge < 2, uv[:, 1] - rect[:, 2], uv[:, 0] - rect[:, 0])
        r = self._raster
        normal_u = np.array([-1.0, 1.0, 0.0, 0.0])[edge]
        normal_v = np.array([0.0, 0.0, -1.0, 1.0])[edge]
        normal_e = r.cos * normal_u - r.sin * normal_v
        normal_n = r.sin * normal_u + r.cos * normal_v
        sun = _sun_vector()
        shade = 0.62 + 0.38 * np.clip(normal_e * sun[0] + normal_n * sun[1], 0.0, 1.0)
        floor_m, spacing, win_w, win_h, eave, shop = self._facades["params"][bid].T
        fz = z / floor_m
        fs = along / spacing
        frac_z, frac_s = fz - np.floor(fz), fs - np.floor(fs)
        window = (np.abs(frac_z - 0.5) < win_h / 2) & (np.abs(frac_s - 0.5) < win_w / 2)
        window &= (fz >= 1.0) & (z < eave - 0.5)
        window |= (shop > 0) & (z > 0.45) & (z < 2.6) & (np.abs(frac_s - 0.5) < 0.42)
        colour = self._facades["facade"][bid] * shade[:, None]
        colour[(frac_z < 0.035) & (fz >= 1.0)] *= 0.88  # floor bands
        glass = self._facades["window"][bid] * (0.8 + 0.4 * frac_z)[:, None]
        colour[window] = glass[window]
        return colour

    # ------------------------------------------------------------------------------ cameras
    def trace_panorama(
        self,
        position_xy_m: tuple[float, float],
        heading_deg: float,
        size_hw: tuple[int, int] = (512, 1024),
        camera_height_m: float = 1.6,
        max_range_m: float = 80.0,
    ) -> RayHits:
        """Rays of an equirectangular panorama (:class:`~loc2.core.geometry.cameras.Equirectangular` layout): row 0
        zenith, last row nadir, centre column along ``heading_deg`` (true north), columns clockwise."""
        h, w = size_hw
        offsets = 2.0 * math.pi * (np.arange(w) + 0.5) / w - math.pi
        theta = math.pi * (np.arange(h) + 0.5) / h
        tau = (np.cos(theta) / np.sin(theta))[:, None]
        return self.trace(position_xy_m, heading_deg, offsets, tau, camera_height_m, max_range_m)

    def render_panorama(
        self,
        position_xy_m: tuple[float, float],
        heading_deg: float,
        size_hw: tuple[int, int] = (512, 1024),
        camera_height_m: float = 1.6,
        max_range_m: float = 80.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rgb (H, W, 3) uint8, radial depth (H, W) float32 metres, NaN for sky / beyond ``max_range_m``)."""
        hits = self.trace_panorama(position_xy_m, heading_deg, size_hw, camera_height_m, max_range_m)
        return hits.rgb, hits.radial_m

    def trace_pinhole(
        self,
        position_xy_m: tuple[float, float],
        heading_deg: float,
        camera: Pinhole,
        camera_height_m: float = 1.6,
        max_range_m: float = 80.0,
    ) -> RayHits:
        """Rays of a level pinhole camera looking along ``heading_deg`` (true north); x right, y down."""
        a = (np.arange(camera.width) + 0.5 - camera.cx) / camera.fx
        b = (np.arange(camera.height) + 0.5 - camera.cy) / camera.fy
        tau = -b[:, None] / np.sqrt(1.0 + a * a)[None, :]
        return self.trace(position_xy_m, heading_deg, np.arctan(a), tau, camera_height_m, max_range_m)

    def render_pinhole(
        self,
        position_xy_m: tuple[float, float],
        heading_deg: float,
        camera: Pinhole,
        camera_height_m: float = 1.6,
        max_range_m: float = 80.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rgb (H, W, 3) uint8, z-depth (H, W) float32 metres along the optical axis, NaN where no hit)."""
        hits = self.trace_pinhole(position_xy_m, heading_deg, camera, camera_height_m, max_range_m)
        a = (np.arange(camera.width) + 0.5 - camera.cx) / camera.fx
        z = hits.horizontal_m / np.sqrt(1.0 + a * a)[None, :].astype(np.float32)
        return hits.rgb, z.astype(np.float32)
