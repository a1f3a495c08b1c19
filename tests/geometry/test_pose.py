"""The pose type (``core/geometry/pose.py``): apply, inverse, compose, and the one yaw and heading."""

import math

import numpy as np
import pytest
import torch

from loc2.core.geometry.pose import Similarity2D, rotation_matrix


def _pose(yaw_deg=30.0, t=(2.0, -1.0), s=1.3) -> Similarity2D:
    return Similarity2D(rotation_matrix(math.radians(yaw_deg)), np.array(t), s)


def test_apply_is_s_R_xy_plus_t():
    pose = _pose()
    xy = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 4.0]])
    np.testing.assert_allclose(pose.apply(xy), pose.s * xy @ pose.R.T + pose.t)
    np.testing.assert_allclose(pose.apply(np.zeros(2)), pose.t)  # the camera lands at t
    np.testing.assert_allclose(pose.apply(np.array([1.0, 0.0])), pose.t + 1.3 * pose.R[:, 0])


def test_inverse_undoes_the_pose():
    pose = _pose(-110.0, (5.0, 7.0), 0.8)
    xy = np.random.default_rng(0).normal(size=(20, 2))
    np.testing.assert_allclose(pose.inverse().apply(pose.apply(xy)), xy, atol=1e-12)
    np.testing.assert_allclose(pose.apply(pose.inverse().apply(xy)), xy, atol=1e-12)


def test_compose_applies_the_first_pose_first():
    a, b = _pose(30.0, (1.0, 2.0), 2.0), _pose(-75.0, (-3.0, 0.5), 0.5)
    xy = np.random.default_rng(1).normal(size=(10, 2))
    np.testing.assert_allclose(a.compose(b).apply(xy), a.apply(b.apply(xy)), atol=1e-12)
    identity = a.compose(a.inverse())
    np.testing.assert_allclose(identity.R, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(identity.t, 0.0, atol=1e-12)
    assert identity.s == pytest.approx(1.0)


@pytest.mark.parametrize("heading", [0.0, 37.5, 90.0, 180.0, 269.9, 359.0])
def test_heading_round_trip_and_direction(heading):
    pose = Similarity2D.from_heading(heading, (1.0, -2.0))
    assert pose.heading_aerial_deg == pytest.approx(heading % 360)
    assert pose.yaw_deg == pytest.approx(((-heading + 180) % 360) - 180)
    # the camera looks along −x of its ground frame; up in the aerial frame is −x, right is +y
    ahead = pose.apply(np.array([-1.0, 0.0])) - pose.t
    h = math.radians(heading)
    np.testing.assert_allclose(ahead, [-math.cos(h), math.sin(h)], atol=1e-12)


def test_headings_are_clockwise_from_up():
    east = Similarity2D.from_heading(90.0)
    np.testing.assert_allclose(east.apply(np.array([-1.0, 0.0])), [0.0, 1.0], atol=1e-12)  # right = east
    assert Similarity2D(np.eye(2), np.zeros(2)).heading_aerial_deg == 0.0  # R = I looks up


def test_torch_poses_and_their_numpy_copy():
    R = torch.tensor(rotation_matrix(0.3), dtype=torch.float32)
    pose = Similarity2D(R, torch.tensor([1.0, 2.0]), torch.tensor(0.9))
    xy = torch.tensor([[1.0, 1.0], [2.0, -1.0]])
    torch.testing.assert_close(pose.apply(xy), 0.9 * xy @ R.T + torch.tensor([1.0, 2.0]))
    as_numpy = pose.numpy()
    assert as_numpy.R.dtype == np.float64 and isinstance(as_numpy.s, float)
    assert as_numpy.yaw_deg == pose.yaw_deg  # the float32 values, exactly
    np.testing.assert_array_equal(as_numpy.t, pose.t.double().numpy())


def test_undefined_pose_is_nan():
    pose = Similarity2D.undefined()
    assert np.isnan(pose.t).all() and np.isnan(pose.R).all() and math.isnan(pose.s)
