"""SegmentationPipeline: what PipelineConfig turns on and off, on the packaged model."""

from dataclasses import replace

import pytest

from jetson_seg.model_loader import open_model
from jetson_seg.training.scenes import scene_stream
from jetson_seg.vision.image_conversion import DecodedImage
from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted
from jetson_seg.vision.postprocess import region_colors


@pytest.fixture(scope='module')
def pipeline():
    engine, info = open_model('', 'litert', threads=1)
    yield SegmentationPipeline(engine, info, PipelineConfig())
    engine.close()


def test_regions_carry_colours_only_when_the_config_asks(pipeline):
    """region_colors on (the default): each region's median colour; off: the same regions,
    `color` None (the node turns it off where the tracker's colour cue is, weight 0)."""
    wanted = Wanted(mask=False, color_mask=False, overlay=False)
    stream = scene_stream(5)
    found = 0
    for _ in range(6):
        image = DecodedImage(next(stream).image, 'rgb')
        pipeline.config = PipelineConfig()
        colored = pipeline.run(image, wanted)
        pipeline.config = replace(PipelineConfig(), region_colors=False)
        plain = pipeline.run(image, wanted)
        assert plain.regions and all(r.color is None for r in plain.regions)
        assert [replace(r, color=None) for r in colored.regions] == plain.regions
        assert colored.regions == region_colors(plain.regions, image.pixels, colored.class_ids)
        assert all(r.color is not None and len(r.color) == 3 for r in colored.regions)
        found += len(plain.regions)
    assert found >= 6  # the scenes hold objects the model finds
