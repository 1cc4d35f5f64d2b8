"""ROS 2 lifecycle node: camera images (and depth) in, masks, overlays and detections (2D, 3D) out.

Parameters and lifecycle; the rest is wired in. Frames are scheduled by vision.scheduler (newest
per camera, two stages, accounting) and handed to NodeFrameSink (frame_sink.py), which sends each
camera's results through its CameraOutputs (camera_outputs.py); HealthTracker (health.py) keeps
what diagnostics report; lifecycle_runner.py runs the process.

    python -m jetson_seg.ros.segmentation_node --ros-args -r image:=/camera/image_raw
"""

from __future__ import annotations

import functools
import itertools
import sys
import time

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_msgs.msg import Header

from jetson_seg.allocator import keep_large_allocations
from jetson_seg.errors import ConfigurationError, JetsonSegError
from jetson_seg.model_loader import open_model
from jetson_seg.ros import image_input
from jetson_seg.ros.camera_outputs import CameraOutputs
from jetson_seg.ros.depth_outputs import DepthOutputs
from jetson_seg.ros.frame_sink import NodeFrameSink
from jetson_seg.ros.health import HealthTracker
from jetson_seg.ros.interface import (DIAGNOSTICS, DIAGNOSTICS_QOS, QOS_OVERRIDES, input_topic,
                                      qos, stamp_key)
from jetson_seg.ros.lifecycle_runner import run_lifecycle_node
from jetson_seg.ros.messages import diagnostics_msg
from jetson_seg.ros.node_parameters import (SEGMENTATION_PARAMS, SPECS_BY_NAME,
                                            TRACKING_PARAMS, health_config, model_options,
                                            pipeline_config, tracking_params)
from jetson_seg.ros.parameter_declaration import declare_all
from jetson_seg.ros.rclpy_compat import add_post_set_parameters_callback, destroy_state_machine
from jetson_seg.ros.serialized import UnreadableImage
from jetson_seg.ros.shutdown import ShutdownRequest
from jetson_seg.vision.frame_stats import FrameStats
from jetson_seg.vision.pipeline import SegmentationPipeline
from jetson_seg.vision.rate_cap import RateCap
from jetson_seg.vision.scheduler import FrameScheduler
from jetson_seg.vision.tracker import RegionTracker, TrackerParams


class SegmentationNode(LifecycleNode):
    """Subscribes `image` (and `depth`), publishes `segmentation/*`, `/diagnostics` (README)."""

    def __init__(self, name: str = 'segmentation_node', shutdown: ShutdownRequest | None = None,
                 **kwargs) -> None:
        super().__init__(name, **kwargs)
        declare_all(self, SEGMENTATION_PARAMS)
        self._viewer_cap = RateCap(self._param('viewer_max_rate'))
        add_post_set_parameters_callback(self, self._apply_runtime_parameters)
        self._shutdown = shutdown or ShutdownRequest()
        self.stats = FrameStats(clock=self._now)
        self._health = HealthTracker()
        self._engine = None
        self._pipeline: SegmentationPipeline | None = None
        self._tracking: TrackerParams | None = None  # the trackers' settings (configure, retune)
        self._scheduler: FrameScheduler | None = None
        self._cameras: tuple[str, ...] = ()  # as last configured
        self._outputs: dict[str, CameraOutputs] = {}  # camera -> its outputs, from configure
        self._track_ids = itertools.count(1)  # one counter: unique across cameras, never reused
        self._subs: list = []
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
        if any(spec in TRACKING_PARAMS for spec in specs):
            self._retune_trackers()
        if self._pipeline is not None and any(spec.runtime for spec in specs):
            self._pipeline.config = pipeline_config(self._param, self._tracking)
        later = [spec.name for spec in specs if not spec.runtime]
        if later and self._engine is not None:
            self.get_logger().info(f'{", ".join(later)} will apply at the next configure '
                                   f'(deactivate, cleanup, configure, activate)')

    def _retune_trackers(self) -> None:
        """New tracking.* values apply from the next frame; tracks are kept."""
        try:
            params = tracking_params(self._param)
        except ConfigurationError as exc:  # each value passed alone; together they cannot work
            self.get_logger().error(f'{exc}; tracking keeps its previous settings')
            return
        self._tracking = params
        for outputs in list(self._outputs.values()):
            outputs.retune(params)

    # ---- lifecycle --------------------------------------------------------------------------
    def _open_model(self):
        return open_model(**model_options(self._param), log=self.get_logger().warning)

    def _configure_failed(self, reason: str) -> TransitionCallbackReturn:
        self._health.configure_error = reason
        self.get_logger().error(f'configure failed: {reason}')
        return TransitionCallbackReturn.FAILURE

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        started = time.monotonic()
        try:
            tracking = tracking_params(self._param)
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
        self._engine, self._health.configure_error = engine, ''
        self._tracking = tracking
        self._pipeline = SegmentationPipeline(engine, info, pipeline_config(self._param, tracking))
        output_qos = qos(self._param('output_reliability'), self._param('output_depth'))
        self._cameras = tuple(dict.fromkeys(self._param('cameras')))
        self._outputs = {cam: CameraOutputs(self, cam, output_qos, self._viewer_cap,
                                            RegionTracker(tracking, self._track_ids),
                                            DepthOutputs(self, cam, output_qos, self._param,
                                                         self._health.depth))
                         for cam in self._cameras}
        sink = NodeFrameSink(self._outputs, info.class_names, self._param, self.get_logger(),
                             self._health)
        self._scheduler = FrameScheduler(self._pipeline, sink, self.stats, sink.check)
        header = Header(stamp=self.get_clock().now().to_msg())
        for outputs in self._outputs.values():
            outputs.publish_label_info(header, info.class_names)
        self._restart_diagnostics_timer()
        self._health.state = 'inactive'
        self.get_logger().info(
            f'configured: engine={engine.label} model={info.path} input={info.input_hw} '
            f'classes={list(info.class_names)} in {time.monotonic() - started:.1f} s')
        return TransitionCallbackReturn.SUCCESS

    def _restart_diagnostics_timer(self) -> None:
        """Apply a changed diagnostics_period (it takes effect at configure)."""
        self.destroy_timer(self._diag_timer)
        self._diag_timer = self.create_timer(self._param('diagnostics_period'),
                                             self._publish_diagnostics)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._scheduler.start()
        compressed = self._param('image_transport') == 'compressed'
        topic = input_topic(compressed)
        for cam, outputs in self._outputs.items():  # raw images arrive as CDR bytes
            self._subs.append(self.create_subscription(
                topic.type, topic.under(cam),
                functools.partial(self._on_image if compressed else self._on_serialized, cam),
                qos(self._param('input_reliability'), self._param('input_depth')),
                qos_overriding_options=QOS_OVERRIDES, raw=not compressed))
            self._subs.extend(outputs.subscribe_optional_inputs())
        self._health.activated(self._now())
        topics = ', '.join(sub.topic_name for sub in self._subs)
        self.get_logger().info(f'active: listening on {topics}')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker()
        for outputs in self._outputs.values():
            outputs.reset_tracks()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self._health.state = 'inactive'
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for outputs in self._outputs.values():
            outputs.destroy()
        self._outputs = {}
        self._pipeline = self._scheduler = None
        self._close_engine()
        self._health.state = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker()
        self._close_engine()
        self._health.state = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def _close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def destroy_node(self) -> None:
        """Destroy the node and, now, its lifecycle state machine.

        rclpy leaves the state machine to garbage collection, and until then it keeps the rcl
        node and its Fast DDS shared memory alive (leaked when the process ends with os._exit).
        """
        super().destroy_node()
        destroy_state_machine(self)

    # ---- frames (handled by the scheduler, NodeFrameSink and CameraOutputs) ---------------
    def _on_image(self, camera: str, msg) -> None:
        now = self._now()
        self._health.saw_image(camera, now)
        age = None if isinstance(msg, UnreadableImage) else \
            now - stamp_key(msg.header.stamp) * 1e-9
        self._scheduler.submit(camera, msg, age)

    def _on_serialized(self, camera: str, data: bytes) -> None:
        self._on_image(camera, image_input.readable(data))

    def stop_worker(self) -> None:
        """Stop frame processing (idempotent); pending frames are counted as dropped."""
        if self._scheduler is not None:
            self._scheduler.stop()

    # ---- diagnostics ------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        config = health_config(self._param)
        self.stats.fps_window_s = config.rate_window_s
        level, text, figures = self._health.report(
            self._now(), config, self._cameras, self.stats.snapshot(),
            self._engine.label if self._engine else 'none')
        self._diag_pub.publish(diagnostics_msg(
            self.get_clock().now().to_msg(), f'{self.get_name()}: segmentation',
            self.get_fully_qualified_name(), level, text, figures))


def main(args: list[str] | None = None) -> int:
    """Run the node (see ros/lifecycle_runner.py): exit code 0 after SIGINT/SIGTERM."""
    keep_large_allocations()  # frame-sized buffers: no page faults per frame
    return run_lifecycle_node(lambda shutdown: SegmentationNode(shutdown=shutdown),
                              'segmentation_node', args)


if __name__ == '__main__':
    sys.exit(main())
