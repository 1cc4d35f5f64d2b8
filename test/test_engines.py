"""Engines behind the one interface: batches of changing size, as several cameras give them."""

import numpy as np

from jetson_seg.model_loader import open_model
from jetson_seg.optimize.optimizer import check_frames
from jetson_seg.vision.image_conversion import DecodedImage
from jetson_seg.vision.preprocess import NetworkInput


def test_litert_keeps_one_interpreter_per_batch_size_and_batches_agree():
    engine, info = open_model('', 'litert', threads=1)
    frames = check_frames(3, info.input_hw)
    single = [engine.infer(frames[i:i + 1])[0] for i in range(3)]
    for count in (3, 2, 3, 1, 2):  # 1..3 cameras pending, in any order
        out = engine.infer(np.ascontiguousarray(frames[:count]))
        assert out.shape[0] == count
        for i in range(count):
            np.testing.assert_allclose(out[i], single[i], atol=1e-5)
    assert engine.batch_sizes == [1, 2, 3]  # allocated once per count, then reused
    engine.close()


def test_network_input_keeps_buffers_per_batch_size():
    engine, info = open_model('', 'litert', threads=1)
    net = NetworkInput(info.input, info.input_hw)
    image = DecodedImage(np.full((480, 640, 3), 77, np.uint8), 'rgb')
    box = net.letterbox((480, 640))
    first = net.fill([image, image], [box, box])
    net.fill([image], [box])
    again = net.fill([image, image], [box, box])
    assert again is first and (again == 77).all()
    engine.close()


def test_pipeline_keeps_output_buffers_per_camera_size():
    from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted

    engine, info = open_model('', 'litert', threads=1)
    pipeline = SegmentationPipeline(engine, info, PipelineConfig())
    cameras = [DecodedImage(np.full((480, 640, 3), 90, np.uint8), 'rgb'),
               DecodedImage(np.full((360, 640, 3), 90, np.uint8), 'rgb')]
    wanted = [Wanted(), Wanted()]
    pipeline.run_batch(cameras, wanted)
    output = pipeline.output
    planes = {size: [id(p) for p in buffers] for size, buffers in output._planes.items()}
    scratch = {shape: id(s) for shape, s in output._argmax.items()}
    for _ in range(3):  # the two sizes alternate: nothing is reallocated
        results = pipeline.run_batch(cameras, wanted)
    assert set(planes) == {(640, 480), (640, 360)}
    assert {size: [id(p) for p in buffers] for size, buffers in output._planes.items()} \
        == planes
    assert {shape: id(s) for shape, s in output._argmax.items()} == scratch
    assert [r.mask.shape for r in results] == [(480, 640), (360, 640)]
    engine.close()
