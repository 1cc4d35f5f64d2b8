"""Parameter rules: every default is valid, and bad values are refused with a reason."""

import pytest

from jetson_seg.ros.node_parameters import SEGMENTATION_PARAMS, SPECS_BY_NAME, validate


def test_defaults_are_valid():
    for spec in SEGMENTATION_PARAMS:
        assert validate(spec, spec.default) is None, spec.name


def test_depth_parameters_are_the_cores_defaults():
    from jetson_seg.ros.node_parameters import DEPTH_PARAMS, depth_params
    from jetson_seg.vision.depth import DepthParams

    assert depth_params({spec.name: spec.default for spec in DEPTH_PARAMS}) == DepthParams()


@pytest.mark.parametrize('weight, colors', [(4.0, True), (0.5, True), (0.0, False)])
def test_regions_carry_colours_only_for_the_trackers_colour_cue(weight, colors):
    """The node's pipeline config from its parameters and the trackers' settings in effect."""
    from jetson_seg.ros.node_parameters import pipeline_config, tracking_params
    from jetson_seg.vision.pipeline import PipelineConfig

    values = {spec.name: spec.default for spec in SEGMENTATION_PARAMS}
    values['tracking.color_weight'] = weight
    config = pipeline_config(values.get, tracking_params(values.get))
    assert config.region_colors is colors
    assert config == PipelineConfig(region_colors=colors)  # the rest: the defaults'


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
    ('depth.point_stride', 0, '>= 1'),
    ('depth.point_filter', 'median', "one of ['band', 'none']"),
    ('depth.smooth', 2, '>= 3'),
    ('depth.min_valid', 1.5, '<= 1.0'),
    ('depth.band', 0.0, '>= 0.001'),
    ('depth.grow_px', -1, '>= 0'),
    ('depth.input_reliability', 'sometimes', 'one of'),
])
def test_bad_values_are_refused_with_reason(name, value, fragment):
    reason = validate(SPECS_BY_NAME[name], value)
    assert reason is not None and fragment in reason and name in reason


@pytest.mark.parametrize('cameras,fragment', [
    (['a//b'], "item 'a//b' is not a valid ROS name: topic name must not contain repeated '/'"),
    (['front', '1cam'], "item '1cam' is not a valid ROS name: topic name token must not start "
                        "with a number"),
    (['a b'], "item 'a b' is not a valid ROS name: topic name must not contain characters"),
    (['front', 'front/'], "items 'front' and 'front/' name the same topics (/robot/front/image)"),
    (['', '/robot'], "items '' and '/robot' name the same topics (/robot/image)"),
])
def test_camera_names_are_refused_by_rclpy_rules_with_the_reason(cameras, fragment):
    from jetson_seg.ros.parameter_declaration import topic_prefix_problem

    reason = topic_prefix_problem(SPECS_BY_NAME['cameras'], cameras, 'seg', '/robot')
    assert reason is not None and fragment in reason, reason
    assert reason.startswith('cameras ')


def test_camera_names_rclpy_takes_are_accepted():
    from jetson_seg.ros.parameter_declaration import topic_prefix_problem

    spec = SPECS_BY_NAME['cameras']
    for cameras in ([''], ['front', 'rear'], ['/robot/left', 'right/'], ['~/cam', 'cam_1/x']):
        assert topic_prefix_problem(spec, cameras, 'seg', '/robot') is None, cameras
