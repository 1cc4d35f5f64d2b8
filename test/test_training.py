"""Training: a grown network starts where the trained one ended, and a short run really trains."""

import json
import signal
from dataclasses import replace

import keras
import numpy as np
import pytest

from jetson_seg.model_info import KERAS_FILE, MODEL_JSON, default_model_dir
from jetson_seg.optimize.optimizer import check_frames
from jetson_seg.training import train
from jetson_seg.training.model import ModelSpec, build_model


@pytest.fixture(scope='module')
def shipped():
    return keras.saving.load_model(default_model_dir() / KERAS_FILE, compile=False)


@pytest.fixture(scope='module')
def shipped_spec() -> ModelSpec:
    """How the shipped network was built, from its training record."""
    meta = json.loads((default_model_dir() / MODEL_JSON).read_text())
    return train.recorded_spec(meta['training'])


def test_extra_residual_blocks_start_near_identity(shipped, shipped_spec):
    quarter, eighth = shipped_spec.residual_blocks
    grown = build_model(replace(shipped_spec, residual_blocks=(quarter + 1, eighth + 1)))
    new = train._load_initial(grown, str(default_model_dir()))
    assert {name.split('_')[0] for name in new} == {f'enc2r{quarter}', f'enc3r{eighth}'}
    frames = check_frames(4, (192, 256))
    before = shipped(frames).numpy()
    after = grown(frames).numpy()
    change = float(np.abs(after - before).mean())
    agreement = float((after.argmax(-1) == before.argmax(-1)).mean())
    assert change < 0.002 and agreement > 0.995, (change, agreement)


def test_a_larger_input_takes_every_trained_layer(shipped, shipped_spec):
    wider = build_model(replace(shipped_spec, height=240, width=320))
    assert train._load_initial(wider, str(default_model_dir())) == []
    for layer in shipped.layers:
        for mine, theirs in zip(wider.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(mine, theirs)


def test_a_layer_of_another_shape_is_refused(shipped_spec):
    narrower = build_model(replace(shipped_spec, widths=(8, 24, 40, 64)))
    with pytest.raises(ValueError):
        train._load_initial(narrower, str(default_model_dir()))


def test_a_short_run_from_the_shipped_weights_writes_its_record(tmp_path, shipped,
                                                                shipped_spec):
    """One more block at 1/8 than the shipped network: the run grows it and records that."""
    blocks = (shipped_spec.residual_blocks[0], shipped_spec.residual_blocks[1] + 1)
    out = tmp_path / 'run'
    train.main(['--output', str(out), '--init', str(default_model_dir()), '--seed', '3',
                '--scenes', '64', '--steps', '4', '--steps-per-epoch', '2', '--batch', '4',
                '--lr', '1e-4', '--eval-scenes', '0', '--workers', '2', '--weights-only',
                '--no-progress', '--residual-blocks', *map(str, blocks),
                '--small-object-weight', '3'])
    run = json.loads((out / train.RUN_FILE).read_text())
    assert run['steps_done'] == 4 and np.isfinite(run['final_loss'])
    assert run['model_spec']['residual_blocks'] == list(blocks)
    assert (run['small_area'], run['small_object_weight']) == (400, 3.0)
    rebuilt = build_model(train.recorded_spec(run))
    rebuilt.load_weights(out / train.WEIGHTS_FILE)  # the record describes the weights
    before = {w.path: w.numpy() for w in shipped.weights}
    moved = [not np.array_equal(w.numpy(), before[w.path]) for w in rebuilt.weights
             if w.path in before]
    assert len(moved) == len(before) and any(moved)  # four steps changed the weights


def test_some_shifts_get_their_own_probability_and_the_rest_keep_the_stream():
    from jetson_seg.training.scenes import SHIFTS, SceneSpec, generate_scene

    spec = SceneSpec(shift_rate=0.1, shift_rates=train.shift_rates(['mono=0.5', 'jpeg=0']))
    assert (spec.rate_of('mono'), spec.rate_of('jpeg'), spec.rate_of('noise')) == (0.5, 0.0, 0.1)
    rng = np.random.default_rng(0)
    draws = [{s for s in SHIFTS if rng.random() < spec.rate_of(s)} for _ in range(4000)]
    share = {s: np.mean([s in d for d in draws]) for s in SHIFTS}
    assert abs(share['mono'] - 0.5) < 0.03 and share['jpeg'] == 0
    assert abs(share['noise'] - 0.1) < 0.02
    # rates equal to the common one leave the scenes of a seed as they were
    same = SceneSpec(shift_rate=0.3, shift_rates=(('mono', 0.3),))
    for seed in range(3):
        a = generate_scene(np.random.default_rng(seed), SceneSpec(shift_rate=0.3))
        b = generate_scene(np.random.default_rng(seed), same)
        assert a.shifts == b.shifts and np.array_equal(a.image, b.image)
    with pytest.raises(ValueError, match='unknown shifts'):
        SceneSpec(shift_rates=(('fog', 0.2),))
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        SceneSpec(shift_rates=(('mono', 1.5),))
    with pytest.raises(ValueError, match='SHIFT=PROBABILITY'):
        train.shift_rates(['mono'])


def _small_by_components(mask: np.ndarray, small_area: int) -> np.ndarray:
    """The small objects found independently: every connected region of every class."""
    import cv2

    expected = np.zeros(mask.shape, bool)
    for cls in range(1, int(mask.max()) + 1):
        n, labels, stats, _ = cv2.connectedComponentsWithStats((mask == cls).view(np.uint8), 8)
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < small_area:
                expected |= labels == k
    return expected


def test_the_last_label_channel_holds_the_small_objects():
    from jetson_seg.training.scenes import scene_stream

    scenes = scene_stream(11)
    checked = 0
    for _ in range(40):
        scene = next(scenes)
        small = train.small_objects(scene, 400)
        expected = _small_by_components(scene.mask, 400)
        np.testing.assert_array_equal(small == 1.0, expected)
        frame, labels = train._letterboxed(scene, 256, 192, 400)
        assert frame.shape == (192, 256, 3) and labels.shape == (192, 256, train.LABEL_CHANNELS)
        assert np.abs(labels[..., :-1].astype(int).sum(-1) - 255).max() <= 2  # shares add up
        # the network sees (256/640)^2 of each pixel; rounding to 1/255 costs little
        assert abs(labels[..., -1].sum() / 255 - expected.sum() * 0.4 ** 2) \
            <= 1 + 0.01 * expected.sum()
        checked += bool(expected.any()) and bool((scene.mask > 0)[~expected].any())
    assert checked >= 5  # scenes with both small and larger objects were among them


def test_a_small_share_draws_more_small_objects_and_none_keeps_the_stream():
    from jetson_seg.training.scenes import SceneSpec, generate_scene

    def scenes(spec, count=30):
        rng = np.random.default_rng(5)
        return [generate_scene(rng, spec) for _ in range(count)]

    plain, zero = scenes(SceneSpec()), scenes(SceneSpec(small_share=0.0))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(plain, zero))
    small = scenes(SceneSpec(max_objects=1, small_share=1.0, max_blur=0))
    # 14-32 px across: no object larger than a 32 px square (a disc 804 px, a triangle less)
    assert max(box[5] for s in small for box in s.boxes) <= 32 * 32 + 64
    assert np.median([box[5] for s in plain for box in s.boxes]) > 32 * 32 / 2
    with pytest.raises(ValueError, match='small_share'):
        SceneSpec(small_share=1.5)
    with pytest.raises(ValueError, match='small_share'):
        SceneSpec(small_sizes=(20.0, 10.0))


def test_small_objects_pixels_weigh_more_in_the_loss():
    classes = 4
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(classes), (2, 6, 8)).astype(np.float32)
    labels = np.zeros((2, 6, 8, classes + 1), np.uint8)
    labels[..., 0] = 255
    labels[:, 2:4, 2:4, 0], labels[:, 2:4, 2:4, 3] = 0, 255  # a 2x2 triangle
    plain = np.asarray(train.soft_dice_ce(classes, 5.0)(labels, probs))
    labels[:, 2:4, 2:4, classes] = 255  # ... marked small
    weighted = np.asarray(train.soft_dice_ce(classes, 5.0)(labels, probs))
    unweighted = np.asarray(train.soft_dice_ce(classes, 0.0)(labels, probs))
    np.testing.assert_allclose(unweighted, plain, rtol=1e-6)  # the channel alone changes nothing
    extra = -np.log(probs[:, 2:4, 2:4, 3]).sum(axis=(1, 2)) / 48 * 5.0
    np.testing.assert_allclose(weighted - plain, extra, rtol=1e-4)


@pytest.mark.timeout(120)
def test_a_render_worker_failure_stops_training_instead_of_hanging():
    from jetson_seg.training.scenes import SceneSpec

    with train.render_pool(1) as pool:
        feed = train.SceneFeed(5, 8, 2, 2, SceneSpec(), (0, 0), pool)  # no pixels to render
        with pytest.raises(RuntimeError, match='rendering training scenes failed'):
            next(iter(feed))


def test_render_workers_die_on_sigterm_in_a_process_where_rclpy_runs():
    """A render worker forked where rclpy runs still dies on SIGTERM.

    rclpy.init() installs a SIGTERM handler that a forked worker inherits and that does not end
    it: Pool.terminate() then waited for the worker forever (the suite hung so); here it must
    return. The worker's exit code is not read: a fork server's worker reports 255 at times
    where it reports -15 at others. Output goes to a file and the session is killed after, so
    nothing left over keeps the test waiting.
    """
    import contextlib
    import os
    import subprocess
    import sys
    import tempfile

    script = ('import os, signal, rclpy\n'
              'rclpy.init()\n'
              'from jetson_seg.training import train\n'
              'pool = train.render_pool(1)\n'
              'pool.apply(os.getpid)\n'
              'pool.terminate()\n'  # SIGTERM to the worker, then waits until it is gone
              'pool.join()\n'
              "print('terminated', flush=True)\n"
              'os._exit(0)\n')  # a surviving worker would hang a normal exit
    with tempfile.TemporaryFile('w+') as output:
        process = subprocess.Popen([sys.executable, '-c', script], stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):  # no process of it left
                os.killpg(process.pid, signal.SIGKILL)
        output.seek(0)
        printed = output.read()
    assert 'terminated' in printed.splitlines(), printed


def test_render_workers_yield_to_the_trainer():
    import os

    with train.render_pool(2) as pool:
        assert min(pool.map(os.nice, [0] * 4)) >= min(os.nice(0) + 10, 19)


def test_a_stride_two_stem_reads_finer_pixels_into_the_trained_network(shipped_spec):
    """512x384 in, the shipped network's 256x192 grid out: every trained layer is taken."""
    from jetson_seg.training.scenes import SceneSpec

    spec = replace(shipped_spec, height=384, width=512, stem_stride=2)
    finer = build_model(spec)
    assert train._load_initial(finer, str(default_model_dir())) == []
    assert finer.output_shape == (None, 192, 256, 4)
    images, labels = train._render_chunk((5, 2, 512, 384, SceneSpec(), 400, 2))
    assert images.shape == (2, 384, 512, 3) and labels.shape == (2, 192, 256, 5)
    coarse_images, coarse_labels = train._render_chunk((5, 2, 256, 192, SceneSpec(), 400, 1))
    np.testing.assert_array_equal(labels, coarse_labels)  # same scenes, labelled on one grid
    assert np.abs(images[:, ::2, ::2].astype(int) - coarse_images.astype(int)).mean() < 12


@pytest.mark.parametrize('frame, net, stride', [((752, 480), (256, 192), 2),
                                                ((640, 360), (320, 240), 4)])
def test_labels_sit_where_the_node_reads_a_smaller_output(frame, net, stride):
    """The labels' content rows and columns are the node's: fitted on the input, then scaled."""
    from jetson_seg.training.scenes import Scene
    from jetson_seg.vision.letterbox import Letterbox

    (w, h), (net_w, net_h) = frame, net
    scene = Scene(np.full((h, w, 3), 90, np.uint8), np.ones((h, w), np.uint8),
                  [(0, 0, w, h, 1, w * h)])  # one object fills the frame
    _, labels = train._letterboxed(scene, net_w, net_h, 400, stride)
    box = Letterbox.fit(w, h, net_w, net_h).on_grid(net_w // stride, net_h // stride)
    rows = np.flatnonzero(labels[..., 1].max(1))
    cols = np.flatnonzero(labels[..., 1].max(0))
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (
        box.pad_y, box.pad_y + box.content_h, box.pad_x, box.pad_x + box.content_w)


def test_an_input_the_stem_cannot_halve_evenly_is_refused():
    with pytest.raises(ValueError, match='multiple of 16, got 256x200'):
        ModelSpec(height=200, width=256, stem_stride=2)


@pytest.mark.timeout(120)
def test_a_killed_render_worker_stops_training_instead_of_hanging(monkeypatch):
    """Pool replaces a worker killed mid-chunk (the OOM killer, a crash) and the chunk is lost."""
    import os
    import signal
    import time

    from jetson_seg.training.scenes import SceneSpec

    monkeypatch.setattr(train, 'RENDER_TIMEOUT_S', 15)
    with train.render_pool(1) as pool:
        worker = pool.apply(os.getpid)
        feed = train.SceneFeed(5, 64, 2, 2, SceneSpec(), (192, 256), pool, chunk=64)
        time.sleep(0.5)  # the worker is rendering the only chunk (seconds of work)
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(RuntimeError, match='no scenes rendered for 15 s'):
            next(iter(feed))
