"""Objects in 3D over DDS (issue 26): an RGB-D stream in, detections_3d and a labelled cloud out.

Generated RGB-D frames (training/depth_scenes.py: objects on tilted planes in front of a wall,
depth noise, flying pixels at the edges, holes) go to one node process as a colour image, a
registered depth image (16UC1 millimetres or 32FC1 metres) and its camera_info; its 3D boxes are
scored against the true ones, its cloud against the same geometry run here on its own mask and
detections (regions in the node's order, ids as its detections carry them).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from image_msgs import compressed_depth
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_harness import NodeProcess, call_service, status_value, wait_status
from sensor_msgs.msg import Image

from jetson_seg.ros.interface import DEPTH_OUTPUTS
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.tools.rgbd_client import (Answer, RgbdClient, camera_info_msg, depth_image_msg,
                                          located_errors)
from jetson_seg.training.depth_scenes import DepthScene, DepthSceneSpec, depth_scene_stream
from jetson_seg.training.scenes import CLASS_NAMES
from jetson_seg.vision.compressed_depth import decode_compressed_depth
from jetson_seg.vision.depth import (NO_ID, POINT_DTYPE, POINT_FIELDS, labelled_points,
                                     locate_objects, object_points)
from jetson_seg.vision.image_conversion import DepthImage, decode_depth
from jetson_seg.vision.pipeline import PipelineConfig
from jetson_seg.vision.postprocess import find_regions

NAMESPACE = '/depth3d'
STRIDE = 2
#: Stamps of this module's frames (s), far from the probe frames'.
STAMPS = itertools.count(5000)


def _key() -> int:
    """A fresh stamp key (ns) for one frame."""
    return next(STAMPS) * 1_000_000_000


def _rgbd_node(ros_env, namespace: str, transport: str):
    """A node serving RGB-D frames in `namespace`, and its client (a generator fixture)."""
    node = NodeProcess({'threads': 1, 'tracking.min_hits': 1, 'diagnostics_period': 0.2,
                        'depth.point_stride': STRIDE, 'depth.transport': transport}, ros_env,
                       namespace=namespace)
    client = NodeClient.on_own_node('depth_client', namespace=namespace,
                                    outputs=('mask', 'detections'),
                                    node_name=f'{namespace}/segmentation_node')
    try:
        node.wait_for_output('active: listening')
        client.connect(node_proc=node)
        rgbd = RgbdClient(client, namespace, transport == 'compressedDepth')
        assert rgbd.ready()
        yield rgbd
    finally:
        client.close()
        assert node.stop() == 0, node.text


@pytest.fixture(scope='module')
def rgbd(ros_env):
    yield from _rgbd_node(ros_env, NAMESPACE, 'raw')


def expected_cloud(answer: Answer, depth: DepthImage, scene: DepthScene, stride: int = STRIDE,
                   point_filter: str = 'band') -> np.ndarray:
    """The node's cloud made here from its own mask and detections, as the node makes it.

    The regions are found again in the published mask and put in the order of the node's
    detections (which is its regions' order), each with its detection's id.
    """
    found = find_regions(answer.mask, None, len(CLASS_NAMES), PipelineConfig().min_region_area)
    by_box = {(r.class_id, r.x0, r.y0, r.x1, r.y1): r for r in found}
    regions = []
    for det in answer.detections:
        c, box = det.bbox.center.position, det.bbox
        regions.append(by_box[(int(det.results[0].hypothesis.class_id),
                               round(c.x - box.size_x / 2), round(c.y - box.size_y / 2),
                               round(c.x + box.size_x / 2), round(c.y + box.size_y / 2))])
    assert len(regions) == len(found)
    ids = [int(det.id) if det.id else NO_ID for det in answer.detections]
    height, width = answer.mask.shape
    located = locate_objects(answer.mask, regions, (width, height), depth, scene.depth_camera)
    if point_filter == 'band':
        return object_points(located, ids, depth, scene.depth_camera, stride)
    return labelled_points(answer.mask, depth, scene.depth_camera, stride, located, ids)


def _check_answer(scene: DepthScene, answer: Answer, depth: DepthImage) -> None:
    """3D detections carry their 2D twins' ids, classes and scores; the cloud is their points."""
    twins = {det.id: det for det in answer.detections}
    assert answer.detections_3d and all(det.id for det in answer.detections_3d)
    for det in answer.detections_3d:
        twin = twins[det.id]
        assert det.results[0].hypothesis.class_id == twin.results[0].hypothesis.class_id
        assert det.results[0].hypothesis.score == pytest.approx(
            twin.results[0].hypothesis.score)
        assert det.header.frame_id == 'camera'
    cloud = answer.points
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == list(POINT_FIELDS)
    assert (cloud.height, cloud.point_step, cloud.is_dense) == (1, 20, True)
    points = np.frombuffer(bytes(cloud.data), POINT_DTYPE)
    np.testing.assert_array_equal(points, expected_cloud(answer, depth, scene))
    assert set(np.unique(points['label'])) <= {1, 2, 3}
    # one object's points are split off by the id of its 3D detection: every one has some
    assert set(points['id'].tolist()) == {int(det.id) for det in answer.detections_3d}


def _score(rgbd: RgbdClient, spec: DepthSceneSpec, seed: int, frames: int,
           encodings: tuple[str, ...]) -> np.ndarray:
    """(depth, lateral, size) errors of every located object over `frames` frames."""
    errors = []
    stream = depth_scene_stream(seed, spec)
    for index in range(frames):
        scene, encoding = next(stream), encodings[index % len(encodings)]
        answer = rgbd.exchange(scene, _key(), encoding)
        _check_answer(scene, answer, decode_depth(depth_image_msg(scene.depth, encoding)))
        errors += [(e.depth, e.lateral, e.size) for e in located_errors(scene, answer)]
    return np.array(errors)


def _print_shares(label: str, errors: np.ndarray) -> None:
    """The figures the README quotes (pytest -s shows them)."""
    print(f'{label}: {len(errors)} objects; within depth 2% '
          f'{(errors[:, 0] <= 0.02).mean():.0%}, 1 cm/m {(errors[:, 1] <= 0.01).mean():.0%}, '
          f'size 5% {(errors[:, 2] <= 0.05).mean():.0%}; worst {errors.max(0)}')


def test_centres_and_sizes_against_the_truth_16uc1_and_32fc1(rgbd):
    errors = _score(rgbd, DepthSceneSpec(), 26, 24, ('16UC1', '32FC1'))
    assert len(errors) >= 50
    _print_shares('full resolution', errors)
    # issue 26's goal for every object: measured worst 0.44% depth, 2.4 mm/m, size 3.5%
    assert (errors[:, 0] <= 0.02).all()
    assert (errors[:, 1] <= 0.01).all()
    assert (errors[:, 2] <= 0.05).all()


def test_half_resolution_depth(rgbd):
    errors = _score(rgbd, DepthSceneSpec(depth_scale=0.5), 27, 12, ('16UC1', '32FC1'))
    assert len(errors) >= 25
    _print_shares('half resolution', errors)
    assert (errors[:, 0] <= 0.02).all()  # measured: every object within the goal, worst
    assert (errors[:, 1] <= 0.01).all()  # 0.52% depth, 2.5 mm/m, size 4.1%; pixels twice as
    assert (errors[:, 2] <= 0.05).mean() >= 0.95  # coarse: the goal for 95%, 6% for all
    assert (errors[:, 2] <= 0.06).all()


def test_a_frame_without_depth_keeps_its_2d_outputs_and_late_depth_is_paired(rgbd):
    scene = next(depth_scene_stream(28))
    alone = next(STAMPS) * 1_000_000_000
    answer = rgbd.answer(rgbd.send_colour(scene.image, alone), with_3d=False)
    assert answer.detections and answer.mask.any()
    rgbd.client.spin_for(0.5)
    assert all(alone not in got for got in rgbd.three_d.values())
    # the depth image comes after the frame was answered: the frame waited for it
    late = next(STAMPS) * 1_000_000_000
    record = rgbd.send_colour(scene.image, late)
    rgbd.answer(record, with_3d=False)
    rgbd.client.spin_for(0.2)
    assert all(late not in got for got in rgbd.three_d.values())
    rgbd.send_depth(depth_image_msg(scene.depth, '32FC1'), camera_info_msg(scene.depth_camera),
                    late)
    answer = rgbd.answer(record)
    _check_answer(scene, answer, decode_depth(depth_image_msg(scene.depth, '32FC1')))


def _set(rgbd: RgbdClient, name: str, value: int | str):
    """Set one of the node's parameters through its service; the result."""
    param = Parameter(name=name, value=ParameterValue(
        type=ParameterType.PARAMETER_INTEGER, integer_value=value) if isinstance(value, int)
        else ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))
    return call_service(rgbd.client.node, SetParameters,
                        f'{NAMESPACE}/segmentation_node/set_parameters',
                        SetParameters.Request(parameters=[param])).results[0]


def test_point_stride_and_filter_are_set_at_run_time(rgbd):
    """depth.point_filter none: every mask pixel with a reading, as before, and the ids of the
    objects whose regions they are on (the flying pixels and the wall behind among them)."""
    scene = next(depth_scene_stream(31))
    depth = decode_depth(depth_image_msg(scene.depth, '16UC1'))
    for name, bad in (('depth.point_stride', 0), ('depth.point_filter', 'median')):
        refused = _set(rgbd, name, bad)
        assert not refused.successful and name in refused.reason
    assert _set(rgbd, 'depth.point_stride', 4).successful
    try:
        answer = rgbd.exchange(scene, _key())
        points = np.frombuffer(bytes(answer.points.data), POINT_DTYPE)
        np.testing.assert_array_equal(points, expected_cloud(answer, depth, scene, 4))
        assert _set(rgbd, 'depth.point_filter', 'none').successful
        answer = rgbd.exchange(scene, _key())
        every = np.frombuffer(bytes(answer.points.data), POINT_DTYPE)
        np.testing.assert_array_equal(every, expected_cloud(answer, depth, scene, 4, 'none'))
        np.testing.assert_array_equal(every[['x', 'y', 'z', 'label']], labelled_points(
            answer.mask, depth, scene.depth_camera, 4)[['x', 'y', 'z', 'label']])
        # the mask's pixels on the wall (3-4 m) are only in the unfiltered cloud
        assert every['z'].max() > 3.0 > points['z'].max()
    finally:
        assert _set(rgbd, 'depth.point_stride', STRIDE).successful
        assert _set(rgbd, 'depth.point_filter', 'band').successful


def _malformed(scene: DepthScene) -> dict[str, Image]:
    """A depth image per reason it is rejected for (the last only once paired with its frame)."""
    good = depth_image_msg(scene.depth, '16UC1')
    cut = depth_image_msg(scene.depth, '16UC1')
    cut.data = bytes(good.data)[:1000]
    short = depth_image_msg(scene.depth, '16UC1')
    short.step = 100
    empty = Image(height=0, width=640, encoding='16UC1', step=1280)
    other = depth_image_msg(scene.depth[:100, :100], '16UC1')  # square: not this camera's view
    return {'unsupported_depth_encoding': Image(height=2, width=2, encoding='rgb8', step=6,
                                                data=bytes(12)),
            'truncated': cut, 'bad_step': short, 'zero_size': empty, 'depth_mismatch': other}


def test_malformed_depth_is_rejected_counted_and_the_node_goes_on(rgbd):
    scene = next(depth_scene_stream(29))
    sent = _malformed(scene)
    uncalibrated = camera_info_msg(scene.depth_camera)
    uncalibrated.k = [0.0] * 9
    sent['no_camera_info'] = depth_image_msg(scene.depth, '16UC1')
    for reason, msg in sent.items():
        key = next(STAMPS) * 1_000_000_000
        rgbd.send_depth(msg, uncalibrated if reason == 'no_camera_info' else
                        camera_info_msg(scene.depth_camera), key)
        answer = rgbd.answer(rgbd.send_colour(scene.image, key), with_3d=False)
        assert answer.detections, reason  # the frame itself is answered in 2D
    status = wait_status(rgbd.client, lambda s: all(
        any(kv.key == f'depth_rejected.{r}' for kv in s.values) for r in sent))
    for reason in sent:
        assert int(status_value(status, f'depth_rejected.{reason}')) >= 1, reason
    start = len(rgbd.client.statuses)
    warned = wait_status(rgbd.client, lambda s: 'depth images rejected' in s.message,
                         after=max(0, start - 10))
    assert warned.level == b'\x01'
    # the node goes on: the next good pair gets its 3D outputs, and the warning ends
    used = int(status_value(status, 'depth_used'))
    _check_answer(scene, rgbd.exchange(scene, _key()),
                  decode_depth(depth_image_msg(scene.depth, '16UC1')))
    later = wait_status(rgbd.client, lambda s: int(status_value(s, 'depth_used')) > used and
                        s.level == b'\x00', after=len(rgbd.client.statuses))
    assert int(status_value(later, 'depth_rejected')) >= len(sent)


@pytest.fixture(scope='module')
def compressed_rgbd(ros_env):
    yield from _rgbd_node(ros_env, f'{NAMESPACE}_compressed', 'compressedDepth')


@pytest.mark.parametrize('encoding, codec', [('16UC1', 'png'), ('16UC1', 'rvl'),
                                             ('32FC1', 'png'), ('32FC1', 'rvl')])
def test_compressed_depth_is_located_like_the_depth_it_carries(compressed_rgbd, encoding,
                                                               codec):
    """depth.transport compressedDepth: the plugin's png and rvl, millimetres and metres."""
    scene = next(depth_scene_stream(32))
    msg = compressed_depth(scene.depth, encoding, codec)
    key = next(STAMPS) * 1_000_000_000
    compressed_rgbd.send_depth(msg, camera_info_msg(scene.depth_camera), key)
    compressed_rgbd.client.spin_for(0.02)
    answer = compressed_rgbd.answer(compressed_rgbd.send_colour(scene.image, key))
    carried = decode_compressed_depth(msg)
    if encoding == '16UC1':  # lossless: the raw image's values
        raw = decode_depth(depth_image_msg(scene.depth, '16UC1'))
        np.testing.assert_array_equal(carried.values, raw.values)
    _check_answer(scene, answer, carried)
    errors = np.array([(e.depth, e.lateral) for e in located_errors(scene, answer)])
    assert len(errors) >= 2 and (errors[:, 0] <= 0.02).all() and (errors[:, 1] <= 0.01).all()


def test_malformed_compressed_depth_is_rejected_and_counted(compressed_rgbd):
    scene = next(depth_scene_stream(33))
    bad = compressed_depth(scene.depth, '16UC1', 'png')
    bad.data = bytes(bad.data)[:12] + b'not a png' * 10
    key = next(STAMPS) * 1_000_000_000
    compressed_rgbd.send_depth(bad, camera_info_msg(scene.depth_camera), key)
    assert compressed_rgbd.answer(compressed_rgbd.send_colour(scene.image, key),
                                  with_3d=False).detections
    status = wait_status(compressed_rgbd.client, lambda s: any(
        kv.key == 'depth_rejected.corrupt_compressed' for kv in s.values))
    assert int(status_value(status, 'depth_rejected.corrupt_compressed')) >= 1


def test_nothing_3d_is_made_while_nobody_subscribes(rgbd):
    """Runs last: it drops the module's 3D subscriptions."""
    node = rgbd.client.node
    for subscription in rgbd.subscriptions:
        node.destroy_subscription(subscription)
    topics = [node.resolve_topic_name(t.under(NAMESPACE)) for t in DEPTH_OUTPUTS.values()]
    assert rgbd.client.spin_until(lambda: not any(node.count_subscribers(t) for t in topics),
                                  10.0)
    rgbd.client.spin_for(0.5)  # the node's publishers see them go too
    before = wait_status(rgbd.client, lambda s: True, after=len(rgbd.client.statuses))
    scene = next(depth_scene_stream(30))
    for _ in range(3):
        key = next(STAMPS) * 1_000_000_000
        rgbd.send_depth(depth_image_msg(scene.depth, '16UC1'), camera_info_msg(scene.depth_camera),
                        key)
        assert rgbd.answer(rgbd.send_colour(scene.image, key), with_3d=False).detections
    after = wait_status(rgbd.client, lambda s: True, after=len(rgbd.client.statuses))
    assert status_value(after, 'depth_used') == status_value(before, 'depth_used')


def test_messages_of_an_empty_cloud_and_of_names_for_class_ids():
    """No objects: a valid empty cloud; class_id_format name carries over to the 3D boxes."""
    from std_msgs.msg import Header

    from jetson_seg.ros.messages import detections_3d_msg, point_cloud_msg
    from jetson_seg.vision.depth import Object3D

    empty = point_cloud_msg(Header(), np.empty(0, POINT_DTYPE))
    assert (empty.width, empty.row_step, len(empty.data), len(empty.fields)) == (0, 0, 0, 5)
    found = Object3D(region=1, class_id=2, score=0.75, center=(0.1, -0.2, 1.5),
                     size=(0.3, 0.2, 0.05), points=400, valid=0.9)
    msg = detections_3d_msg(Header(frame_id='cam'), [found], CLASS_NAMES, ['', '7'])
    (det,) = msg.detections
    assert (det.id, det.results[0].hypothesis.class_id) == ('7', 'rectangle')
    assert det.results[0].hypothesis.score == pytest.approx(0.75)
    center = det.bbox.center
    assert (center.position.x, center.position.y, center.position.z) == (0.1, -0.2, 1.5)
    assert center.orientation.w == 1.0 and det.results[0].pose.pose == center
    assert (det.bbox.size.x, det.bbox.size.y, det.bbox.size.z) == (0.3, 0.2, 0.05)
