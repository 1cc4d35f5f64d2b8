"""Quantisation-aware training parts: the INT8 rounding layer and moving weights between nets."""

import numpy as np
import pytest

keras = pytest.importorskip('keras')

from jetson_seg.model_info import default_model_dir  # noqa: E402
from jetson_seg.optimize.optimizer import check_frames  # noqa: E402
from jetson_seg.training.model import (FakeQuant, ModelSpec, build_model,  # noqa: E402
                                       copy_weights)


def test_fake_quant_learns_the_range_and_rounds_to_256_levels():
    layer = FakeQuant(momentum=0.9)
    x = np.linspace(-1.0, 3.0, 1000, dtype=np.float32).reshape(1, 10, 100, 1)
    out = np.asarray(layer(x, training=True))
    assert float(layer.lo.numpy()) == pytest.approx(-1.0)
    assert float(layer.hi.numpy()) == pytest.approx(3.0)
    assert len(np.unique(out)) <= 256
    step = 4.0 / 255
    assert np.abs(out - x).max() <= step / 2 + 1e-6
    assert np.isclose(out, 0.0).any()  # zero is on the grid, as in LiteRT's INT8
    wide = np.asarray(layer(x * 2, training=False))  # inference: the range stays, values clip
    assert wide.max() == pytest.approx(3.0, abs=step)


def test_fake_quant_passes_the_gradient_straight_through():
    import tensorflow as tf

    layer = FakeQuant(fixed=(0.0, 1.0))
    x = tf.constant(np.random.default_rng(0).random((1, 4, 4, 2), np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(layer(x) * 3.0)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 3.0)


def test_weights_move_between_the_plain_and_the_quantisation_aware_network():
    shipped = keras.saving.load_model(default_model_dir() / 'model.keras', compile=False)
    aware = build_model(ModelSpec(fake_quant=True))
    copy_weights(shipped, aware)
    frames = check_frames(2, (192, 256))
    for layer in aware.layers:  # frozen BatchNorm: only the rounding layers learn below
        layer.trainable = isinstance(layer, FakeQuant)
    aware(frames, training=True)  # the rounding layers learn their ranges from the frames
    back = build_model(ModelSpec())
    copy_weights(aware, back)
    plain, rounded = shipped.predict_on_batch(frames), aware.predict_on_batch(frames)
    np.testing.assert_array_equal(back.predict_on_batch(frames), plain)
    assert not np.array_equal(rounded, plain)  # the rounding is really there
    assert (rounded.argmax(-1) == plain.argmax(-1)).mean() > 0.98
    assert len(aware.layers) > len(shipped.layers) and len(back.layers) == len(shipped.layers)
