"""ROS 2 lifecycle node: camera images in, masks, overlays and detections out.

Wiring only: parameters, QoS, topics, lifecycle and diagnostics. Frame scheduling (newest frame
per camera, two stages, accounting) is vision.scheduler; image and model work is the rclpy-free
core (image_conversion, pipeline); messages.py builds the outgoing messages.

    python -m jetson_seg.ros.segmentation_node --ros-args -r image:=/camera/image_raw
"""

from __future__ import annotations

import collections
import copy
import functools
import itertools
import os
import sys
import threading
import time
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage
from std_msgs.msg import Header

from jetson_seg.allocator import keep_large_allocations
from jetson_seg.errors import ConfigurationError, JetsonSegError
from jetson_seg.vision.frame_stats import FrameStats
from jetson_seg.vision.image_conversion import (ImageRejected, check_compressed, check_image,
                                                decode_compressed, decode_image)
from jetson_seg.ros.health import HealthConfig, Observed, assess
from jetson_seg.ros.interface import (CAMERA_INFO, CAMERA_INFO_QOS, DIAGNOSTICS, DIAGNOSTICS_QOS,
                                      EXTRA_OUTPUTS, LABEL_INFO, LABEL_INFO_QOS, OUTPUTS,
                                      input_topic, qos, stamp_key)
from jetson_seg.ros.messages import (class_labels, compressed_msg, detections_msg,
                                     diagnostics_msg, label_info_msg, mask_camera_info)
from jetson_seg.ros.serialized import UnreadableImage, received_image, serialized_image
from jetson_seg.model_loader import open_model
from jetson_seg.ros.parameters import (SEGMENTATION_PARAMS, SPECS_BY_NAME, TRACKING_PARAMS,
                                       tracker_params)
from jetson_seg.ros.rclpy_compat import add_post_set_parameters_callback, destroy_state_machine
from jetson_seg.ros.rclpy_compat import executor as make_executor
from jetson_seg.ros.shutdown import POLL_S, ShutdownRequest
from jetson_seg.vision.pipeline import FrameResult, PipelineConfig, SegmentationPipeline, Wanted
from jetson_seg.vision.rate_cap import RateCap
from jetson_seg.vision.scheduler import FrameScheduler, PendingFrame
from jetson_seg.vision.tracker import RegionTracker, Track, draw_tracks
from jetson_seg.ros.ros_params import PARAM_ERRORS, declare_all

QOS_OVERRIDES = QoSOverridingOptions.with_default_policies()  # qos_overrides./<topic>.* params
PUBLISHED = {**OUTPUTS, **EXTRA_OUTPUTS}  # per camera, each made only when subscribed


def _stamp(header) -> int:
    return stamp_key(header.stamp)


class CameraInfoMatcher:
    """Pairs each mask with the camera_info of its image's stamp, whichever arrives first.

    Drivers publish the info just before or just after the image; the unmatched side waits
    among the last `size` of its kind. `publish(info, header, mask_size)` sends a pair.
    """

    def __init__(self, publish: Callable[[CameraInfo, Header, tuple[int, int]], None],
                 size: int = 30) -> None:
        self._publish = publish
        self._lock = threading.Lock()
        self._infos: collections.OrderedDict[int, CameraInfo] = \
            collections.OrderedDict()
        self._masks: collections.OrderedDict[int, tuple[Header, tuple[int, int]]] = \
            collections.OrderedDict()
        self._size = size

    def _take_or_keep(self, key: int, other: collections.OrderedDict,
                      mine: collections.OrderedDict, value):
        with self._lock:
            if key in other:
                return other.pop(key)
            mine[key] = value
            while len(mine) > self._size:
                mine.popitem(last=False)
            return None

    def add_info(self, info: CameraInfo) -> None:
        mask = self._take_or_keep(_stamp(info.header), self._masks, self._infos, info)
        if mask is not None:
            self._publish(info, *mask)

    def add_mask(self, header: Header, mask_size: tuple[int, int]) -> None:
        info = self._take_or_keep(_stamp(header), self._infos, self._masks, (header, mask_size))
        if info is not None:
            self._publish(info, header, mask_size)


class SegmentationNode(LifecycleNode):
    """Subscribes `image`, publishes `segmentation/*`, `/diagnostics`; see DESIGN contract."""

    def __init__(self, name: str = 'segmentation_node', shutdown: ShutdownRequest | None = None,
                 **kwargs) -> None:
        super().__init__(name, **kwargs)
        declare_all(self, SEGMENTATION_PARAMS)
        self._viewer_cap = RateCap(self._param('viewer_max_rate'))
        add_post_set_parameters_callback(self, self._apply_runtime_parameters)
        self._shutdown = shutdown or ShutdownRequest()
        self.stats = FrameStats(clock=self._now)
        self._engine = None
        self._pipeline: SegmentationPipeline | None = None
        self._class_names: tuple[str, ...] = ()
        self._labels: tuple[str, ...] = ()
        self._cameras: tuple[str, ...] = ()
        self._pubs: dict[str, dict[str, object]] = {}  # camera -> output -> publisher
        self._infos: dict[str, CameraInfoMatcher] = {}
        self._trackers: dict[str, RegionTracker] = {}
        self._tracks: dict[str, list[Track]] = {}  # camera -> its last frame's tracks
        self._track_ids = itertools.count(1)  # one counter: unique across cameras, never reused
        self._subs: list = []
        self._scheduler: FrameScheduler | None = None
        self._state = 'unconfigured'
        self._configure_error = ''
        self._active_since = 0.0
        self._last_seen: dict[str, float] = {}  # camera -> node-clock time of its last image
        self._last_failure = ''
        self._reported = {'rejected': 0, 'failed': 0}
        # Diagnostics in every lifecycle state: created here, not at configure/activate.
        self._diag_pub = self.create_publisher(DIAGNOSTICS.type, DIAGNOSTICS.name,
                                               DIAGNOSTICS_QOS)
        self._diag_timer = self.create_timer(self._param('diagnostics_period'),
                                             self._publish_diagnostics)

    def _now(self) -> float:
        """Node clock in seconds: ROS time, i.e. /clock under use_sim_time."""
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- parameters -------------------------------------------------------------------------
    def _param(self, name: str):
        return self.get_parameter(name).value

    def _apply_runtime_parameters(self, params) -> None:
        specs = [SPECS_BY_NAME[p.name] for p in params if p.name in SPECS_BY_NAME]
        self._viewer_cap.rate = self._param('viewer_max_rate')
        if self._pipeline is not None and any(spec.runtime for spec in specs):
            self._pipeline.config = self._pipeline_config()
        self._update_labels()
        if any(spec in TRACKING_PARAMS for spec in specs):
            self._retune_trackers()
        later = [spec.name for spec in specs if not spec.runtime]
        if later and self._engine is not None:
            self.get_logger().info(f'{", ".join(later)} will apply at the next configure '
                                   f'(deactivate, cleanup, configure, activate)')

    def _tracking_params(self):
        return tracker_params({spec.name: self._param(spec.name) for spec in TRACKING_PARAMS})

    def _retune_trackers(self) -> None:
        """New tracking.* values apply from the next frame; tracks are kept."""
        try:
            params = self._tracking_params()
        except ConfigurationError as exc:  # each value passed alone; together they cannot work
            self.get_logger().error(f'{exc}; tracking keeps its previous settings')
            return
        for tracker in list(self._trackers.values()):
            tracker.params = params

    def _update_labels(self) -> None:
        """Detection class_id of each class index, as class_id_format says."""
        self._labels = class_labels(self._class_names, self._param('class_id_format') == 'name')

    def _pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(mask_at_input_resolution=self._param('mask_resolution') == 'input',
                              overlay_alpha=float(self._param('overlay_alpha')),
                              min_region_area=int(self._param('min_region_area')))

    def _health_config(self) -> HealthConfig:
        """The health rules, and a rate window that holds a few frames even of a slow camera."""
        expected = float(self._param('expected_rate'))
        self.stats.fps_window_s = max(2.0, 4.0 / expected) if expected > 0 else 2.0
        return HealthConfig(expected_rate=expected,
                            rate_tolerance=float(self._param('rate_tolerance')),
                            stale_after=float(self._param('stale_after')))

    # ---- lifecycle --------------------------------------------------------------------------
    def _open_model(self):
        return open_model(self._param('model_path'), self._param('engine'),
                          self._param('threads'), self._param('engine_fallback'),
                          log=self.get_logger().warning, trust=self._param('trust_model'),
                          precision=self._param('precision'),
                          onnx_providers=tuple(self._param('onnx_providers')),
                          gpu_memory_limit_mb=self._param('gpu_memory_limit_mb'))

    def _configure_failed(self, reason: str) -> TransitionCallbackReturn:
        self._configure_error = reason
        self.get_logger().error(f'configure failed: {reason}')
        return TransitionCallbackReturn.FAILURE

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        started = time.monotonic()
        try:
            tracking = self._tracking_params()
        except ConfigurationError as exc:  # each value passed alone; together they cannot work
            return self._configure_failed(str(exc))
        self.get_logger().info('configuring: loading the model')
        try:  # on a helper thread, so that SIGINT/SIGTERM need not wait for the load
            loaded = self._shutdown.run_interruptibly(self._open_model, 'model_loader')
        except JetsonSegError as exc:
            return self._configure_failed(str(exc))
        except Exception as exc:  # rclpy would turn it into a silent ERROR transition
            return self._configure_failed(f'unexpected error: {exc!r}')
        if loaded is None:
            self.get_logger().info('configure abandoned: shutting down')
            return TransitionCallbackReturn.FAILURE
        engine, info = loaded
        self._engine, self._configure_error = engine, ''
        self._class_names = info.class_names
        self._update_labels()
        self._pipeline = SegmentationPipeline(engine, info, self._pipeline_config())
        self._scheduler = FrameScheduler(self._pipeline, self, self.stats, self.check)
        self._cameras = tuple(dict.fromkeys(self._param('cameras')))
        self._pubs = {cam: self._camera_publishers(cam) for cam in self._cameras}
        self._listening = {cam: set() for cam in self._cameras}  # as `wanted` last found it
        self._infos = {cam: CameraInfoMatcher(functools.partial(self._publish_camera_info, cam))
                       for cam in self._cameras}
        self._trackers = {cam: RegionTracker(tracking, self._track_ids) for cam in self._cameras}
        header = Header(stamp=self.get_clock().now().to_msg())
        for pubs in self._pubs.values():  # latched: late joiners get the table of this model
            pubs['label_info'].publish(label_info_msg(header, self._class_names))
        self._restart_diagnostics_timer()
        self._state = 'inactive'
        self.get_logger().info(
            f'configured: engine={engine.label} model={info.path} input={info.input_hw} '
            f'classes={list(info.class_names)} in {time.monotonic() - started:.1f} s')
        return TransitionCallbackReturn.SUCCESS

    def _restart_diagnostics_timer(self) -> None:
        """Apply a changed diagnostics_period (it takes effect at configure)."""
        self.destroy_timer(self._diag_timer)
        self._diag_timer = self.create_timer(self._param('diagnostics_period'),
                                             self._publish_diagnostics)

    def _camera_publishers(self, camera: str) -> dict[str, object]:
        """Publishers of one camera's outputs under `<camera>/segmentation/`.

        Each gets its own QoSProfile: rclpy applies qos_overrides to the profile in place.
        """
        pubs = {key: self.create_publisher(
                    topic.type, topic.under(camera),
                    qos(self._param('output_reliability'), self._param('output_depth')),
                    qos_overriding_options=QOS_OVERRIDES)
                for key, topic in PUBLISHED.items()}
        pubs['label_info'] = self.create_publisher(
            LABEL_INFO.type, LABEL_INFO.under(camera), copy.copy(LABEL_INFO_QOS),
            qos_overriding_options=QOS_OVERRIDES)
        return pubs

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._scheduler.start()
        compressed = self._param('image_transport') == 'compressed'
        topic = input_topic(compressed)
        for cam in self._cameras:  # raw images arrive as CDR bytes, read in place
            self._subs.append(self.create_subscription(
                topic.type, topic.under(cam),
                functools.partial(self._on_image if compressed else self._on_serialized, cam),
                qos(self._param('input_reliability'), self._param('input_depth')),
                qos_overriding_options=QOS_OVERRIDES, raw=not compressed))
            self._subs.append(self.create_subscription(
                CAMERA_INFO.type, CAMERA_INFO.under(cam), self._infos[cam].add_info,
                copy.copy(CAMERA_INFO_QOS), qos_overriding_options=QOS_OVERRIDES))
        self._active_since = self._now()
        self._state = 'active'
        topics = ', '.join(sub.topic_name for sub in self._subs)
        self.get_logger().info(f'active: listening on {topics}')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker()
        for tracker in self._trackers.values():  # a reactivated camera may show anything
            tracker.reset()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self._state = 'inactive'
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for pub in [p for pubs in self._pubs.values() for p in pubs.values()]:
            self.destroy_publisher(pub)
        self._pubs, self._infos = {}, {}
        self._pipeline = self._scheduler = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self._state = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker()
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self._state = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        """Destroy the node and, now, its lifecycle state machine.

        rclpy leaves the state machine to garbage collection, and until then it keeps the rcl
        node and its Fast DDS shared memory alive (leaked when the process ends with os._exit).
        """
        super().destroy_node()
        destroy_state_machine(self)

    # ---- frames (FrameSink for the scheduler) ------------------------------------------------
    def _on_image(self, camera: str, msg) -> None:
        now = self._now()
        self._last_seen[camera] = now
        age = None if isinstance(msg, UnreadableImage) else now - _stamp(msg.header) * 1e-9
        self._scheduler.submit(camera, msg, age)

    def _on_serialized(self, camera: str, data: bytes) -> None:
        """A raw Image subscription's bytes: read in place (no Python Image object, no copy)."""
        try:
            msg = received_image(data)
        except ImageRejected as exc:
            msg = UnreadableImage(exc)
        self._on_image(camera, msg)

    def stop_worker(self) -> None:
        """Stop frame processing (idempotent); pending frames are counted as dropped."""
        if self._scheduler is not None:
            self._scheduler.stop()

    def wanted(self, camera: str) -> Wanted:
        """What to compute, from the subscriber counts; `publish` reuses this reading."""
        listened = {key for key, pub in self._pubs[camera].items()
                    if pub.get_subscription_count() > 0}
        self._listening[camera] = listened
        viewers = bool(listened & {'color_mask', 'overlay', 'overlay_compressed'}) and \
            self._viewer_cap.allow(camera)  # viewer_max_rate
        return Wanted(mask=bool(listened & {'mask', 'mask_compressed'}),
                      color_mask=viewers and 'color_mask' in listened,
                      overlay=viewers and bool(listened & {'overlay', 'overlay_compressed'}),
                      detections='detections' in listened)

    def check(self, msg) -> None:
        """Header-only validation in the callback: a malformed message never displaces a frame."""
        max_pixels = self._param('max_image_pixels')
        if isinstance(msg, UnreadableImage):
            raise msg.error
        if isinstance(msg, CompressedImage):
            check_compressed(msg, max_pixels)
        else:
            check_image(msg, max_pixels)

    def decode(self, msg):
        max_pixels = self._param('max_image_pixels')
        if isinstance(msg, CompressedImage):
            return decode_compressed(msg, max_pixels)
        return decode_image(msg, max_pixels)

    def rejected(self, frame: PendingFrame, error: ImageRejected) -> None:
        self.get_logger().warning(f'rejected image (frame_id={frame.message.header.frame_id!r}): '
                                  f'{error}', throttle_duration_sec=2.0)

    def failed(self, error: Exception) -> None:
        self._last_failure = repr(error)
        self.get_logger().error(f'frame failed: {error!r}', throttle_duration_sec=2.0)

    def publish(self, frame: PendingFrame, result: FrameResult) -> None:
        pubs, header = self._pubs[frame.camera], frame.message.header
        listened = self._listening[frame.camera]
        if result.mask is not None and 'mask' in listened:
            pubs['mask'].publish(serialized_image(header, result.mask, 'mono8'))
        if result.regions is not None:
            ids = self._tracked_ids(frame.camera, header, result.regions)
            pubs['detections'].publish(detections_msg(header, result.regions, self._labels, ids))
        if result.mask is not None and 'mask_compressed' in listened:
            pubs['mask_compressed'].publish(compressed_msg(header, result.mask, 'mono8', 'png'))
        if 'camera_info' in listened:
            self._infos[frame.camera].add_mask(header, result.mask_size)

    def _tracked_ids(self, camera: str, header: Header, regions) -> list[str]:
        """Each region's track id ('' until its track is confirmed), from the header stamp."""
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        ids = [''] * len(regions)
        self._tracks[camera] = self._trackers[camera].update(regions, stamp)
        for track in self._tracks[camera]:
            if track.region is not None:
                ids[track.region] = str(track.track_id)
        return ids

    def publish_views(self, frame: PendingFrame, result: FrameResult) -> None:
        pubs, header = self._pubs[frame.camera], frame.message.header
        listened = self._listening[frame.camera]
        if result.color_mask is not None:
            pubs['color_mask'].publish(serialized_image(header, result.color_mask, 'rgb8'))
        if result.overlay is not None:
            if result.regions is not None:  # tracked in publish(): ids and headings drawn on
                draw_tracks(result.overlay, self._tracks.get(frame.camera, ()))
            if 'overlay' in listened:
                pubs['overlay'].publish(serialized_image(header, result.overlay, 'rgb8'))
            if 'overlay_compressed' in listened:
                pubs['overlay_compressed'].publish(compressed_msg(
                    header, result.overlay, 'rgb8', 'jpeg', self._param('jpeg_quality')))

    def _publish_camera_info(self, camera: str, info: CameraInfo, header: Header,
                             mask_size: tuple[int, int]) -> None:
        self._pubs[camera]['camera_info'].publish(mask_camera_info(info, header, *mask_size))

    # ---- diagnostics ------------------------------------------------------------------------
    def _since_report(self, key: str, total: int) -> int:
        recent, self._reported[key] = total - self._reported[key], total
        return recent

    def _publish_diagnostics(self) -> None:
        config = self._health_config()
        figures = self.stats.snapshot()
        failed = self._since_report('failed', self.stats.rejected['processing_error'])
        rejected = self._since_report('rejected', figures['rejected']) - failed
        now = self._now()
        if self._state == 'active' and self._active_since <= 0.0:
            self._active_since = now  # activated under use_sim_time before /clock started
        silence = {cam: now - max(self._active_since, self._last_seen.get(cam, 0.0))
                   for cam in self._cameras}  # a camera silent since activation counts too
        quietest = max(silence, key=silence.get, default='')
        seen = Observed(state=self._state, silence_s=silence.get(quietest, 0.0),
                        quiet_camera=quietest if len(self._cameras) > 1 else '',
                        input_rate_hz=figures['input_rate_hz'] / max(1, len(self._cameras)),
                        rejected_since_report=rejected, failed_since_report=failed,
                        configure_error=self._configure_error, last_failure=self._last_failure)
        level, text = assess(config, seen)
        figures.update(state=self._state, engine=self._engine.label if self._engine else 'none',
                       cameras=len(self._cameras), since_last_input_s=round(seen.silence_s, 3),
                       expected_rate_hz=self._param('expected_rate'))
        self._diag_pub.publish(diagnostics_msg(
            self.get_clock().now().to_msg(), f'{self.get_name()}: segmentation',
            self.get_fully_qualified_name(), level, text, figures))


def main(args: list[str] | None = None) -> int:
    """Run the node; it configures and activates itself unless autostart is false.

    SIGINT and SIGTERM end it at any moment with exit code 0 (see ros/shutdown.py).
    """
    keep_large_allocations()  # frame-sized buffers: no page faults per frame
    shutdown = ShutdownRequest().install()
    rclpy.init(args=args if args is not None else sys.argv,
               signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = SegmentationNode(shutdown=shutdown)
    except PARAM_ERRORS as exc:
        print(f'segmentation_node: invalid parameter: {exc}', file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = make_executor(node.get_parameter('executor').value)
    node.get_logger().info(f'executor: {type(executor).__name__}')
    executor.add_node(node)
    try:
        if node.get_parameter('autostart').value and not shutdown.requested and \
                node.trigger_configure() == TransitionCallbackReturn.SUCCESS and \
                not shutdown.requested:
            node.trigger_activate()
        while not shutdown.requested:
            executor.spin_once(timeout_sec=POLL_S)
    except ExternalShutdownException:
        pass
    finally:
        node.get_logger().info(f'stopping ({shutdown.signal_name or "context shut down"})')
        node.stop_worker()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    if shutdown.abandoned:  # a model load still running: do not wait for it at interpreter exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == '__main__':
    sys.exit(main())
