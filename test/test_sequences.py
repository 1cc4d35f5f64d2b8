"""Generated tracking sequences (training/sequences.py): deterministic, bouncing, truthful."""

from __future__ import annotations

import numpy as np
import pytest

from jetson_seg.training.sequences import SequenceSpec, sequence_frames


def test_a_seed_gives_the_same_sequence():
    spec = SequenceSpec(frames=6)
    first, again = list(sequence_frames(7, spec)), list(sequence_frames(7, spec))
    other = list(sequence_frames(8, spec))
    for a, b in zip(first, again):
        assert np.array_equal(a.image, b.image) and a.objects == b.objects
    assert not np.array_equal(first[0].image, other[0].image)


def test_objects_move_at_their_speed_and_bounce_inside_the_frame():
    spec = SequenceSpec(frames=240)
    speeds, flips = [], 0
    previous = None
    for frame in sequence_frames(1, spec):
        assert frame.stamp == pytest.approx(frame.index / 120)
        for obj in frame.objects:
            x, y = obj.center
            assert 0 <= x <= spec.width and 0 <= y <= spec.height
            speeds.append(np.hypot(*obj.velocity) / spec.rate)
        if previous:
            flips += sum(np.sign(a.velocity[0]) != np.sign(b.velocity[0]) or
                         np.sign(a.velocity[1]) != np.sign(b.velocity[1])
                         for a, b in zip(previous.objects, frame.objects))
        previous = frame
    assert 3 <= min(speeds) and max(speeds) <= 25
    assert flips > 0, 'in two seconds some object meets an edge'


def test_truth_matches_the_masks():
    for frame in sequence_frames(2, SequenceSpec(frames=30)):
        for obj in frame.objects:
            mine = frame.ids == obj.object_id
            assert mine.sum() == obj.visible <= obj.area
            assert np.all(frame.mask[mine] == obj.class_id)
            if obj.visible:
                ys, xs = np.nonzero(mine)
                assert obj.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert np.array_equal(frame.mask > 0, frame.ids > 0)


def test_objects_cross_and_hide_one_another():
    hidden = 0
    for seed in range(3):
        for frame in sequence_frames(seed, SequenceSpec(frames=120)):
            hidden += sum(obj.visible < obj.area for obj in frame.objects)
    assert hidden > 0


def test_motion_blur_runs_along_the_motion():
    from jetson_seg.training.sequences import _coverage, _Mover

    spec = SequenceSpec()
    for velocity in ((20.0, 0.0), (0.0, 20.0), (14.0, -14.0)):
        disc = _Mover(1, 1, 20.0, 1.0, 0.0, 0.0, np.array([100.0, 100.0]),
                      np.array(velocity), np.zeros(3, np.float32))
        cov, _, _ = _coverage(disc, spec)
        ys, xs = np.nonzero(cov > 0.05)
        axis = np.linalg.eigh(np.cov(np.stack([xs, ys]).astype(float)))[1][:, -1]
        assert abs(axis @ np.array(velocity) / np.hypot(*velocity)) > 0.99


@pytest.mark.parametrize('changes', [{'min_speed': 30.0}, {'max_objects': 0},
                                     {'frames': 0}, {'max_size': 400.0}, {'noise': -1.0}])
def test_bad_specs_are_refused(changes):
    with pytest.raises(ValueError, match='SequenceSpec'):
        SequenceSpec(**changes)


def test_truth_survives_its_json_file(tmp_path):
    from jetson_seg.training.sequences import read_truth, truth_json

    frames = list(sequence_frames(4, SequenceSpec(frames=3)))
    path = tmp_path / 'truth.json'
    path.write_text(truth_json([(10 + f.index, f.objects) for f in frames], {'seed': 4}))
    assert read_truth(path) == {10 + f.index: f.objects for f in frames}


def test_a_tracking_bag_carries_its_sequence_and_identities(tmp_path):
    """make_sample_bag --tracking: images 1/120 s apart, each with its objects by stamp."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from jetson_seg.tools.bags import bag_topics
    from jetson_seg.tools.evaluate_tracking import bag_frames
    from jetson_seg.tools.make_sample_bag import START_NS, main
    from jetson_seg.vision.image_conversion import decode_image

    spec = SequenceSpec(width=160, height=120, frames=5, max_size=59.0)
    main([str(tmp_path / 'bag'), '--tracking', '--frames', '5', '--width', '160',
          '--height', '120', '--seed', '3'])
    topics = bag_topics(tmp_path / 'bag')
    assert {name: count for name, (_, count) in topics.items()} == {
        '/camera/image_raw': 5, '/camera/ground_truth': 5, '/camera/camera_info': 5}
    played = list(bag_frames(tmp_path / 'bag', '/camera/image_raw'))
    truth = list(sequence_frames(3, spec))
    assert [key for key, _, _ in played] == [START_NS + round(f.stamp * 1e9) for f in truth]
    assert [objects for _, _, objects in played] == [f.objects for f in truth]
    first = decode_image(deserialize_message(played[0][1], Image))
    assert np.array_equal(first.pixels, truth[0].image)
