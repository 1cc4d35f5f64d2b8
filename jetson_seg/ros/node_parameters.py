"""The nodes' parameter tables (segmentation and optimizer): defaults, descriptions, ranges.

Kept free of rclpy so the rules can be tested alone; parameter_declaration.py turns each
`ParamSpec` into a declared parameter with a descriptor and refuses any value `validate`
objects to.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

from jetson_seg.engines.base import ENGINES
from jetson_seg.engines.onnxruntime import PROVIDERS
from jetson_seg.model_loader import PRECISIONS as MODEL_PRECISIONS
from jetson_seg.optimize.convert_litert import PRECISIONS
from jetson_seg.optimize.optimizer import DEFAULT_TARGETS, TARGETS
from jetson_seg.ros.health import HealthConfig
from jetson_seg.vision.depth import POINT_FILTERS, DepthParams
from jetson_seg.vision.pipeline import PipelineConfig
from jetson_seg.vision.tracker import TrackerParams

QOS_RELIABILITY = ('best_effort', 'reliable')


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: default (its type is the parameter's type), meaning and allowed values.

    For list parameters, `choices` applies to every item.
    """

    name: str
    default: object
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    runtime: bool = False  # takes effect without reconfiguring
    #: Every item is a topic prefix (a camera namespace): parameter_declaration checks it with
    #: rclpy's own name rules, which this rclpy-free module does not have.
    topic_prefixes: bool = False


#: What each tracking parameter means: one per TrackerParams field, declared as tracking.<field>.
TRACKING_HELP = {
    'min_hits': 'Frames in a row an object must be seen before its track id is published',
    'max_age': 'Seconds (header stamps) a track is kept through misses and occlusions',
    'gate_size': 'Match radius: the object\'s size (sqrt of box area) times this ...',
    'gate_motion': '... plus its speed times the time since last seen times this ...',
    'gate_pixels': '... plus this many pixels',
    'max_speed': 'px/s a track seen only once may have moved at',
    'iou_weight': 'Weight of 1 - IoU beside the centre distance in the matching cost',
    'size_weight': 'Weight of the box area ratio in the matching cost',
    'color_weight': 'Weight of the colour difference (median colours, 0-1) in the matching cost',
    'tentative_cost': 'Cost added for unconfirmed tracks, so confirmed ones match first',
    'class_change_cost': 'Cost added where the class differs (inf: never matched)',
    'max_cost': 'A track and a region costing more are never matched',
    'velocity_smoothing': 'Seconds: time constant of the velocity\'s exponential average',
}
#: Smallest values that can work (TrackerParams.problem says why); the largest are generous.
_TRACKING_MINIMUM = {'min_hits': 1, 'max_age': 1e-3, 'max_cost': 1e-3}
_TRACKING_MAXIMUM = {'min_hits': 1000, 'max_age': 3600.0, 'gate_pixels': 1e5, 'max_speed': 1e7,
                     'class_change_cost': 1e9}
TRACKING_PARAMS: tuple[ParamSpec, ...] = tuple(
    ParamSpec(f'tracking.{field.name}', field.default, TRACKING_HELP[field.name],
              minimum=_TRACKING_MINIMUM.get(field.name, 0.0),
              maximum=_TRACKING_MAXIMUM.get(field.name, 1000.0), runtime=True)
    for field in fields(TrackerParams))


def tracker_params(values: dict[str, object]) -> TrackerParams:
    """TrackerParams from tracking.* parameter values (ConfigurationError says what is wrong)."""
    prefix = 'tracking.'
    return TrackerParams(**{name[len(prefix):]: value for name, value in values.items()
                            if name.startswith(prefix)})


#: What each DepthParams field means (vision/depth.py says why), declared as depth.<field>.
DEPTH_HELP = {
    'band': "An object's depth readings are those within this times its lateral size of its "
            'median depth; the rest are background or a nearer object',
    'min_band': 'Metres: the band is never narrower (small or distant objects, sensor noise)',
    'smooth': 'Pixels: box over which interior depths are averaged (>= 3)',
    'min_points': 'An object with fewer depth readings in its band is not located, ...',
    'min_valid': '... nor one with a reading on less than this share of its pixels',
    'grow_px': 'Image pixels an outline may grow into background that reads the object '
               '(in the band, or a mix nearer it than what lies behind), where that closes '
               'within them (corners and tips the mask cut); 0 = off',
}
_DEPTH_RANGE = {'band': (1e-3, 100.0), 'min_band': (0.0, 10.0), 'smooth': (3, 101),
                'min_points': (1, 1 << 20), 'min_valid': (0.0, 1.0), 'grow_px': (0, 64)}
DEPTH_PARAMS: tuple[ParamSpec, ...] = (
    *(ParamSpec(f'depth.{field.name}', field.default, DEPTH_HELP[field.name],
                minimum=_DEPTH_RANGE[field.name][0], maximum=_DEPTH_RANGE[field.name][1],
                runtime=True)
      for field in fields(DepthParams)),
    ParamSpec('depth.point_stride', 2, 'segmentation/points takes every n-th depth pixel, both '
              'ways (2: a quarter of the points)', minimum=1, maximum=64, runtime=True),
    ParamSpec('depth.point_filter', 'band', "segmentation/points: 'band' = each located "
              "object's readings in its depth band, the points its 3D box was made from (no "
              "stray points behind the objects); 'none' = every mask pixel with a reading",
              choices=POINT_FILTERS, runtime=True),
    ParamSpec('depth.queue_size', 10, 'Depth images, and frames, of each camera that wait for '
              'their partner of the same stamp (the oldest are forgotten)', minimum=1,
              maximum=300),
    ParamSpec('depth.transport', 'raw', "'raw' subscribes depth, 'compressedDepth' "
              'depth/compressedDepth (image_transport\'s plugin: png or rvl)',
              choices=('raw', 'compressedDepth')),
    ParamSpec('depth.input_reliability', 'best_effort', 'QoS reliability of the depth and '
              'depth/camera_info subscriptions', choices=QOS_RELIABILITY),
    ParamSpec('depth.input_depth', 2, 'QoS history depth of the depth subscription', minimum=1,
              maximum=1000),
)


def depth_params(values: dict[str, object]) -> DepthParams:
    """DepthParams from the depth.* parameter values of its fields."""
    return DepthParams(**{field.name: values[f'depth.{field.name}']
                          for field in fields(DepthParams)})


SEGMENTATION_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec('model_path', '', 'Model folder (model.keras, model.h5, SavedModel or model.tflite '
              "+ model.json), a model file in one, or an optimizer output folder; '' = the "
              'packaged default model'),
    ParamSpec('trust_model', False, 'Allow models that run code or touch files (.h5/.keras '
              'Lambda or custom layers, SavedModel file/Python ops): only for trusted sources'),
    ParamSpec('engine', 'auto', 'Inference runtime; auto picks the fastest that runs here',
              choices=ENGINES),
    ParamSpec('precision', 'auto', 'Artefact precision to serve from an optimizer output; auto = '
              'the fastest made and checked (INT8 LiteRT on a CPU when present)',
              choices=MODEL_PRECISIONS),
    ParamSpec('onnx_providers', list(PROVIDERS), 'ONNX Runtime execution providers in order of '
              'preference (engine onnxruntime); those missing here are skipped with the reason '
              'in the log, and /diagnostics names the one that runs'),
    ParamSpec('engine_fallback', False, 'If the chosen engine cannot run here, use auto '
              'instead of failing to configure'),
    ParamSpec('threads', 0, 'CPU threads for the engine (0 = runtime default)', minimum=0,
              maximum=256),
    ParamSpec('gpu_memory_limit_mb', 0, 'Cap on TensorFlow GPU memory in MiB (0 = no cap, '
              'grow as needed); fixed once TensorFlow has used the GPU', minimum=0,
              maximum=1 << 20),
    ParamSpec('cameras', [''], "Camera namespaces served with one batched model: each gets "
              "<camera>/image and <camera>/segmentation/*; '' = this node's own namespace; each "
              "must make valid ROS topic names (e.g. front, /robot/front; not a//b, 1cam)",
              topic_prefixes=True),
    ParamSpec('executor', 'events', "ROS callback executor: 'events' (rclpy's C++ events "
              "executor, where this rclpy has it) or 'single_threaded' (rclpy's Python one)",
              choices=('events', 'single_threaded')),
    ParamSpec('image_transport', 'raw', "'raw' subscribes image, 'compressed' image/compressed",
              choices=('raw', 'compressed')),
    ParamSpec('mask_resolution', 'input', 'Publish masks at the input image size or the '
              "network's output size", choices=('input', 'network'), runtime=True),
    ParamSpec('overlay_alpha', 0.5, 'Weight of class colours in the overlay', minimum=0.0,
              maximum=1.0, runtime=True),
    ParamSpec('min_region_area', 32, 'Smallest connected region (mask pixels) reported as a '
              'detection', minimum=1, maximum=1 << 30, runtime=True),
    ParamSpec('max_image_pixels', 4096 * 4096, 'Larger images are rejected before any '
              'allocation', minimum=1, maximum=1 << 31, runtime=True),
    ParamSpec('input_reliability', 'best_effort', 'QoS reliability of the image subscription',
              choices=QOS_RELIABILITY),
    ParamSpec('input_depth', 1, 'QoS history depth of the image subscription', minimum=1,
              maximum=1000),
    ParamSpec('output_reliability', 'reliable', 'QoS reliability of the outputs',
              choices=QOS_RELIABILITY),
    ParamSpec('output_depth', 2, 'QoS history depth of the outputs', minimum=1, maximum=1000),
    ParamSpec('class_id_format', 'id', "Detection class_id: 'id' = the numeric class id as a "
              "string (as segmentation/label_info maps it), 'name' = the class name",
              choices=('id', 'name'), runtime=True),
    ParamSpec('jpeg_quality', 80, 'JPEG quality of segmentation/overlay/compressed', minimum=1,
              maximum=100, runtime=True),
    ParamSpec('viewer_max_rate', 0.0, 'Most colour masks and overlays (each camera) a second, '
              'for viewers; masks and detections still answer every frame; 0 = every frame',
              minimum=0.0, maximum=10000.0, runtime=True),
    ParamSpec('diagnostics_period', 1.0, 'Seconds (node clock) between /diagnostics messages',
              minimum=0.05, maximum=3600.0),
    ParamSpec('expected_rate', 0.0, 'Expected camera rate in Hz: diagnostics WARN below it '
              '(less rate_tolerance); 0 = not checked', minimum=0.0, maximum=10000.0,
              runtime=True),
    ParamSpec('rate_tolerance', 0.1, 'Fraction of expected_rate the input may fall short by',
              minimum=0.0, maximum=1.0, runtime=True),
    ParamSpec('stale_after', 2.0, 'Seconds (node clock) without an image after which '
              'diagnostics WARN that the input is stale; 0 = not checked', minimum=0.0,
              maximum=86400.0, runtime=True),
    ParamSpec('autostart', True, 'Configure and activate at start-up (lifecycle)'),
    *TRACKING_PARAMS,
    *DEPTH_PARAMS,
)


def validate(spec: ParamSpec, value: object) -> str | None:
    """Why `value` is not acceptable for `spec`, or None when it is."""
    expected = type(spec.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return f'{spec.name} must be a list, got {type(value).__name__}'
        bad = [item for item in value if spec.choices and item not in spec.choices]
        if bad:
            return f'{spec.name} items must be in {list(spec.choices)}, got {bad}'
        return None
    if type(value) is not expected:
        return f'{spec.name} must be {expected.__name__}, got {type(value).__name__}'
    if spec.choices and value not in spec.choices:
        return f'{spec.name} must be one of {list(spec.choices)}, got {value!r}'
    if spec.minimum is not None and value < spec.minimum:
        return f'{spec.name} must be >= {spec.minimum}, got {value!r}'
    if spec.maximum is not None and value > spec.maximum:
        return f'{spec.name} must be <= {spec.maximum}, got {value!r}'
    return None


OPTIMIZER_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec('input_model', '', 'Model folder (model.keras, model.h5, SavedModel or '
              "model.tflite + model.json) or a model file in one; '' = packaged default"),
    ParamSpec('trust_model', False, 'Allow models that run code or touch files (see the '
              'segmentation node parameter of the same name)'),
    ParamSpec('output_dir', '', "Artefact directory; '' = $XDG_DATA_HOME/jetson_seg/models "
              '(~/.local/share/jetson_seg/models)'),
    ParamSpec('targets', list(DEFAULT_TARGETS), 'What to produce (onnx: checked on ONNX '
              'Runtime; tensorrt: a TensorRT engine, GPU only)', choices=TARGETS),
    ParamSpec('precision_mode', 'FP16', 'TF-TRT precision; LiteRT also gets this precision '
              'beside FP32', choices=PRECISIONS),
    ParamSpec('max_workspace_size_bytes', 1 << 30, 'TensorRT builder workspace', minimum=1 << 20,
              maximum=1 << 40),
    ParamSpec('minimum_segment_size', 3, 'Smallest subgraph handed to TensorRT', minimum=1,
              maximum=10000),
    ParamSpec('max_batch_size', 1, 'Largest batch the engines serve', minimum=1, maximum=64),
    ParamSpec('is_dynamic_op', True, 'Build engines for the shapes seen at run time (TF 2.x '
              'supports only true)'),
    ParamSpec('maximum_cached_engines', 1, 'Engines kept per segment for different shapes',
              minimum=1, maximum=100),
    ParamSpec('deny_op_types', [''], 'Op types kept out of TensorRT (the origin nodes_blacklist; '
              'TF 2.x honours op types only, not node names; "" entries are ignored)'),
    ParamSpec('build_engines', True, 'Pre-build engines before saving (GPU only)'),
    ParamSpec('build_batch_sizes', [1], 'Batch sizes to pre-build engines for'),
    ParamSpec('calibration_bag', '', 'rosbag2 folder with images for INT8 calibration'),
    ParamSpec('calibration_topic', '', 'Image topic in calibration_bag'),
    ParamSpec('calibration_images', '', 'Folder of PNG/JPEG images for INT8 calibration'),
    ParamSpec('calibration_frames', 32, 'Frames used for calibration', minimum=1,
              maximum=100000),
    ParamSpec('check_bag', '', 'rosbag2 folder with images to check artefacts on (default: '
              'generated scenes, which mean nothing to a model of other classes)'),
    ParamSpec('check_topic', '', 'Image topic in check_bag'),
    ParamSpec('check_images', '', 'Folder of PNG/JPEG images to check artefacts on'),
    ParamSpec('check_frames', 8, 'Frames each artefact is checked on', minimum=1,
              maximum=10000),
    ParamSpec('int8_float_ops', -1, 'INT8 LiteRT: operations at the start of the network kept '
              'float (its first layers carry faint detail that 8 bits flatten); -1 = the fewest '
              'of 0, 1, 2, 3, 5, 8, 13 that keep class IoU >= 0.975 against FP32', minimum=-1,
              maximum=10000),
    ParamSpec('force_rebuild', False, 'Rebuild even when the output matches source and settings'),
    ParamSpec('debug', False, 'Print the traceback of a failure (to report a bug); otherwise a '
              'failure is one line naming the step and the cause'),
)

SPECS_BY_NAME = {spec.name: spec for spec in SEGMENTATION_PARAMS}


#: How the node reads one of its parameters' current value (Node.get_parameter(name).value).
Param = Callable[[str], Any]


def tracking_params(param: Param) -> TrackerParams:
    """The tracker's settings from the node's tracking.* values (ConfigurationError: why not)."""
    return tracker_params({spec.name: param(spec.name) for spec in TRACKING_PARAMS})


def pipeline_config(param: Param, tracking: TrackerParams) -> PipelineConfig:
    """What the pipeline produces, from the runtime parameters that shape it.

    `tracking` is what the trackers use: regions carry colours only for their colour cue.
    """
    return PipelineConfig(mask_at_input_resolution=param('mask_resolution') == 'input',
                          overlay_alpha=float(param('overlay_alpha')),
                          min_region_area=int(param('min_region_area')),
                          region_colors=tracking.color_weight > 0)


def health_config(param: Param) -> HealthConfig:
    """The rules diagnostics apply (expected rate, its tolerance, silence before stale)."""
    return HealthConfig(expected_rate=float(param('expected_rate')),
                        rate_tolerance=float(param('rate_tolerance')),
                        stale_after=float(param('stale_after')))


def model_options(param: Param) -> dict[str, Any]:
    """model_loader.open_model's keyword arguments from the model and engine parameters."""
    return dict(model_path=param('model_path'), engine=param('engine'),
                threads=param('threads'), allow_fallback=param('engine_fallback'),
                trust=param('trust_model'), precision=param('precision'),
                onnx_providers=tuple(param('onnx_providers')),
                gpu_memory_limit_mb=param('gpu_memory_limit_mb'))
