"""Training: a grown network starts where the trained one ended, and a short run really trains."""

import json
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
                '--no-progress', '--residual-blocks', *map(str, blocks)])
    run = json.loads((out / train.RUN_FILE).read_text())
    assert run['steps_done'] == 4 and np.isfinite(run['final_loss'])
    assert run['model_spec']['residual_blocks'] == list(blocks)
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
