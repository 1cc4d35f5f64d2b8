"""Parameter rules: every default is valid, and bad values are refused with a reason."""

import pytest

from jetson_seg.ros.parameters import SEGMENTATION_PARAMS, SPECS_BY_NAME, validate


def test_defaults_are_valid():
    for spec in SEGMENTATION_PARAMS:
        assert validate(spec, spec.default) is None, spec.name


@pytest.mark.parametrize('name,value,fragment', [
    ('engine', 'cuda', "one of ['auto', 'tf', 'tftrt', 'litert', 'onnxruntime']"),
    ('overlay_alpha', 1.5, '<= 1.0'),
    ('overlay_alpha', -0.1, '>= 0.0'),
    ('threads', -1, '>= 0'),
    ('input_depth', 0, '>= 1'),
    ('mask_resolution', 'half', "one of ['input', 'network']"),
    ('input_reliability', 'sometimes', 'one of'),
    ('min_region_area', 'big', 'must be int'),
    ('autostart', 1, 'must be bool'),
    ('class_id_format', 'number', "one of ['id', 'name']"),
    ('jpeg_quality', 0, '>= 1'),
    ('jpeg_quality', 101, '<= 100'),
    ('expected_rate', -1.0, '>= 0.0'),
    ('rate_tolerance', 1.5, '<= 1.0'),
    ('stale_after', -0.5, '>= 0.0'),
])
def test_bad_values_are_refused_with_reason(name, value, fragment):
    reason = validate(SPECS_BY_NAME[name], value)
    assert reason is not None and fragment in reason and name in reason
