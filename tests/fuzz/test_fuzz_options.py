"""Generated bad options and requests (the worker's JSON and the command line's values): negative, absurd,
NaN or infinite radius, hfov 0 or 360, camera height ≤ 0, wrong types, unknown names, missing fields.

``LocalizeRequest.from_dict`` (the worker's request) and ``JobOptions`` run in-process: each case gives
valid options or an OptionsError naming the option; never another exception.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from loc2.core.types import JobOptions, LocalizeRequest, OptionsError

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
numbers = st.one_of(
    st.sampled_from([0.0, -0.0, -5.0, 360.0, 180.0, 1e9, math.nan, math.inf, -math.inf, 1e-300]), json_values
)
OPTION_NAMES = [
    "search_radius_m",
    "hfov_deg",
    "camera_height_m",
    "seed",
    "device",
    "solver",
    "model",
    "weights",
    "depth",
    "figures_dir",
    "use_ransac",
    "include_matches",
    "radius",
    "",
]
# What a message calls each option.
WORDS = {"search_radius_m": "search radius", "hfov_deg": "field of view", "camera_height_m": "camera height"}


@given(values=st.dictionaries(st.sampled_from(OPTION_NAMES), numbers, max_size=5))
def test_options_are_valid_or_refused_naming_the_option(values):
    try:
        options = JobOptions.from_dict(values)
    except OptionsError as exc:
        text = str(exc)
        assert any(WORDS.get(name, name) in text for name in values) or "option" in text, text
    else:
        if options.search_radius_m is not None:
            assert 0 <= options.search_radius_m <= 500
        if options.hfov_deg is not None:
            assert 0 < options.hfov_deg <= 180
        assert 0 < options.camera_height_m <= 100
        assert isinstance(options.seed, int)


@given(
    request=st.fixed_dictionaries(
        {},
        optional={
            "ortho": json_values,
            "photos": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {}, optional={"images": json_values, "priors_file": json_values, "items": json_values}
                ),
            ),
            "output": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {}, optional={"path": json_values, "mode": json_values, "format": json_values}
                ),
            ),
            "options": st.one_of(
                json_values, st.dictionaries(st.sampled_from(OPTION_NAMES), numbers, max_size=3)
            ),
        },
    )
)
def test_a_worker_request_is_valid_or_refused_with_a_message(request):
    try:
        LocalizeRequest.from_dict(request)
    except OptionsError as exc:
        assert str(exc)
