"""ROS 2 lifecycle node: camera images in, masks, overlays and detections out.

Wiring only: parameters, QoS, topics, lifecycle and diagnostics. Frame scheduling (newest frame
per camera, two stages, accounting) is vision.scheduler; image and model work is the rclpy-free
core (image_conversion, pipeline); messages.py builds the outgoing messages.

    python -m jetson_seg.ros.segmentation_node --ros-args -r image:=/camera/image_raw
"""

from __future__ import annotations

import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from jetson_seg.engines.gpu import configure_gpu_memory
from jetson_seg.errors import JetsonSegError
from jetson_seg.vision.frame_stats import FrameStats
from jetson_seg.vision.image_conversion import (ImageRejected, check_compressed, check_image,
                                                decode_compressed, decode_image)
from jetson_seg.ros.interface import (DIAGNOSTICS, DIAGNOSTICS_QOS, LABEL_INFO, LABEL_INFO_QOS,
                                      OUTPUTS, input_topic, qos)
from jetson_seg.ros.messages import detections_msg, diagnostics_msg, image_msg, label_info_msg
from jetson_seg.model_store import open_model
from jetson_seg.ros.parameters import SEGMENTATION_PARAMS, SPECS_BY_NAME
from jetson_seg.vision.pipeline import FrameResult, PipelineConfig, SegmentationPipeline, Wanted
from jetson_seg.vision.scheduler import FrameScheduler, PendingFrame
from jetson_seg.ros.ros_params import PARAM_ERRORS, declare_all


class SegmentationNode(LifecycleNode):
    """Subscribes `image`, publishes `segmentation/*`, `/diagnostics`; see DESIGN contract."""

    def __init__(self, name: str = 'segmentation_node', **kwargs) -> None:
        super().__init__(name, **kwargs)
        declare_all(self, SEGMENTATION_PARAMS)
        self.add_post_set_parameters_callback(self._apply_runtime_parameters)
        self.stats = FrameStats()
        self._engine = None
        self._pipeline: SegmentationPipeline | None = None
        self._class_names: tuple[str, ...] = ()
        self._cameras: tuple[str, ...] = ()
        self._pubs: dict[str, dict[str, object]] = {}  # camera -> output -> publisher
        self._diag_pub = None
        self._subs: list = []
        self._diag_timer = None
        self._scheduler: FrameScheduler | None = None
        self._rejected_reported = 0

    # ---- parameters -------------------------------------------------------------------------
    def _param(self, name: str):
        return self.get_parameter(name).value

    def _apply_runtime_parameters(self, params) -> None:
        specs = [SPECS_BY_NAME[p.name] for p in params if p.name in SPECS_BY_NAME]
        if self._pipeline is not None and any(spec.runtime for spec in specs):
            self._pipeline.config = self._pipeline_config()
        later = [spec.name for spec in specs if not spec.runtime]
        if later and self._engine is not None:
            self.get_logger().info(f'{", ".join(later)} will apply at the next configure '
                                   f'(deactivate, cleanup, configure, activate)')

    def _pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(mask_at_input_resolution=self._param('mask_resolution') == 'input',
                              overlay_alpha=float(self._param('overlay_alpha')),
                              min_region_area=int(self._param('min_region_area')))

    # ---- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        started = time.monotonic()
        try:
            for line in configure_gpu_memory(self._param('gpu_memory_limit_mb')):
                self.get_logger().info(f'GPU {line}')
            engine, info = open_model(self._param('model_path'), self._param('engine'),
                                      self._param('threads'), self._param('engine_fallback'),
                                      log=self.get_logger().warning,
                                      trust=self._param('trust_model'),
                                      precision=self._param('precision'),
                                      onnx_providers=tuple(self._param('onnx_providers')))
        except JetsonSegError as exc:
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # rclpy would turn it into a silent ERROR transition
            self.get_logger().error(f'configure failed unexpectedly: {exc!r}')
            return TransitionCallbackReturn.FAILURE
        self._engine = engine
        self._class_names = info.class_names
        self._pipeline = SegmentationPipeline(engine, info, self._pipeline_config())
        self._scheduler = FrameScheduler(self._pipeline, self, self.stats, self.check)
        out_qos = qos(self._param('output_reliability'), self._param('output_depth'))
        self._cameras = tuple(dict.fromkeys(self._param('cameras')))
        self._pubs = {cam: self._camera_publishers(cam, out_qos) for cam in self._cameras}
        self._diag_pub = self.create_publisher(DIAGNOSTICS.type, DIAGNOSTICS.name,
                                               DIAGNOSTICS_QOS)
        self.get_logger().info(
            f'configured: engine={engine.label} model={info.path} input={info.input_hw} '
            f'classes={list(info.class_names)} in {time.monotonic() - started:.1f} s')
        return TransitionCallbackReturn.SUCCESS

    def _camera_publishers(self, camera: str, profile: QoSProfile) -> dict[str, object]:
        """Publishers of one camera's outputs under `<camera>/segmentation/`."""
        pubs = {key: self.create_publisher(topic.type, topic.under(camera), profile)
                for key, topic in OUTPUTS.items()}
        pubs['label_info'] = self.create_publisher(LABEL_INFO.type, LABEL_INFO.under(camera),
                                                   LABEL_INFO_QOS)
        return pubs

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        header = Header(stamp=self.get_clock().now().to_msg())
        for pubs in self._pubs.values():
            pubs['label_info'].publish(label_info_msg(header, self._class_names))
        self._scheduler.start()
        in_qos = qos(self._param('input_reliability'), self._param('input_depth'))
        topic = input_topic(self._param('image_transport') == 'compressed')
        for cam in self._cameras:
            self._subs.append(self.create_subscription(
                topic.type, topic.under(cam),
                lambda msg, cam=cam: self._scheduler.submit(cam, msg), in_qos))
        self._diag_timer = self.create_timer(self._param('diagnostics_period'),
                                             self._publish_diagnostics)
        topics = ', '.join(sub.topic_name for sub in self._subs)
        self.get_logger().info(f'active: listening on {topics}')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for pub in [p for pubs in self._pubs.values() for p in pubs.values()] + [self._diag_pub]:
            self.destroy_publisher(pub)
        self._pubs, self._diag_pub = {}, None
        self._pipeline = self._scheduler = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker()
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        return TransitionCallbackReturn.SUCCESS

    # ---- frames (FrameSink for the scheduler) ------------------------------------------------
    def stop_worker(self) -> None:
        """Stop frame processing (idempotent); pending frames are counted as dropped."""
        if self._scheduler is not None:
            self._scheduler.stop()

    def wanted(self, camera: str) -> Wanted:
        pubs = self._pubs[camera]
        return Wanted(**{key: pubs[key].get_subscription_count() > 0 for key in OUTPUTS})

    def check(self, msg) -> None:
        """Header-only validation in the callback: a malformed message never displaces a frame."""
        max_pixels = self._param('max_image_pixels')
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
        self.get_logger().error(f'frame failed: {error!r}', throttle_duration_sec=2.0)

    def publish(self, frame: PendingFrame, result: FrameResult) -> None:
        pubs, header = self._pubs[frame.camera], frame.message.header
        if result.mask is not None:
            pubs['mask'].publish(image_msg(header, result.mask, 'mono8'))
        if result.color_mask is not None:
            pubs['color_mask'].publish(image_msg(header, result.color_mask, 'rgb8'))
        if result.overlay is not None:
            pubs['overlay'].publish(image_msg(header, result.overlay, 'rgb8'))
        if result.regions is not None:
            pubs['detections'].publish(detections_msg(header, result.regions,
                                                      self._class_names))

    def _publish_diagnostics(self) -> None:
        figures = self.stats.snapshot()
        figures['engine'] = self._engine.label if self._engine else 'none'
        figures['cameras'] = len(self._cameras)
        recent = figures['rejected'] - self._rejected_reported
        self._rejected_reported = figures['rejected']
        ok = recent == 0  # WARN while malformed frames keep coming, OK again once they stop
        text = 'running' if ok else f'{recent} malformed frames rejected since last report'
        self._diag_pub.publish(diagnostics_msg(
            self.get_clock().now().to_msg(), f'{self.get_name()}: segmentation',
            self.get_fully_qualified_name(), ok, text, figures))


def main(args: list[str] | None = None) -> int:
    """Run the node; it configures and activates itself unless autostart is false."""
    rclpy.init(args=args if args is not None else sys.argv)
    try:
        node = SegmentationNode()
    except PARAM_ERRORS as exc:
        print(f'segmentation_node: invalid parameter: {exc}', file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        if node.get_parameter('autostart').value and \
                node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop_worker()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
