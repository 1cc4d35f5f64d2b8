"""Pre/post-processing: letterbox and its inverse, argmax, overlay, regions from masks."""

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from jetson_seg.model_info import default_palette, InputSpec, ModelInfo, OutputSpec
from jetson_seg.vision.postprocess import (ArgmaxScratch, blend, class_ids, class_mask,
                                           class_mask_in_windows, class_scores, color_mask,
                                           find_regions, id_mask, NetworkOutput,
                                           object_windows, palette_lut, plane_buffers,
                                           Region, region_colors, resize_planes, score_levels,
                                           SCORE_SCALE)
from jetson_seg.vision.image_conversion import DecodedImage
from jetson_seg.vision.pipeline import Wanted
from jetson_seg.vision.letterbox import Letterbox
from jetson_seg.vision.preprocess import NetworkInput, to_network_input
from jetson_seg.training.scenes import CLASS_COLORS, SceneSpec, boxes_from_mask, scene_stream

RNG = np.random.default_rng(0)


def _info(classes: int = 4, head: OutputSpec = OutputSpec()) -> ModelInfo:
    """A model description with `classes` classes and the given head."""
    return ModelInfo(Path('.'), tuple(f'class{k}' for k in range(classes)),
                     default_palette(classes), output=head)


def _whole_frame(scores: np.ndarray, box: Letterbox) -> tuple[np.ndarray, list[np.ndarray]]:
    """Mask and score planes with every plane resized over the whole frame: the reference."""
    levels = score_levels(scores, box)
    planes = resize_planes(levels, plane_buffers(None, len(levels), (box.src_w, box.src_h)))
    return class_mask(planes), planes


def test_network_output_reuses_buffers_per_frame_size_and_matches_a_full_resize():
    probs = RNG.random((192, 256, 4)).astype(np.float32)  # noise: objects everywhere
    output = NetworkOutput(_info())
    box = Letterbox.fit(640, 480, 256, 192)
    first = output.mask(probs, box)
    other = output.mask(probs, Letterbox.fit(640, 360, 256, 192))  # a second camera
    again = output.mask(probs[::-1].copy(), box)
    assert first.windows is None and first.size == first.input_size == (640, 480)
    assert other.size == (640, 360)
    assert all(a is b for a, b in zip(first.planes, again.planes))  # per size, reused
    assert not any(a is b for a, b in zip(first.planes, other.planes))
    assert first.ids is not again.ids  # a mask is new each frame: callers publish it
    full = cv2.resize(probs[::-1], (640, 480), interpolation=cv2.INTER_LINEAR) * SCORE_SCALE
    for k, plane in enumerate(again.planes):  # uint8 levels: rounding and 8-bit interpolation
        assert plane.dtype == np.uint8
        np.testing.assert_allclose(plane, full[..., k], atol=1.5)
    np.testing.assert_array_equal(again.ids, class_mask(again.planes))
    small = output.mask(probs, box, at_input_resolution=False)
    assert small.size == (256, 192) and small.input_size == (640, 480)
    np.testing.assert_array_equal(small.planes[2], np.round(probs[..., 2] * SCORE_SCALE))
    np.testing.assert_array_equal(small.ids, np.round(probs * SCORE_SCALE).argmax(-1))


def test_network_output_regions_are_in_input_pixels_at_either_mask_resolution():
    probs = np.zeros((192, 256, 3), np.float32)
    probs[..., 0] = 0.9
    probs[20:40, 30:60, 1] = 0.95  # 30 x 20 network pixels, half the frame's scale
    probs[100:110, 200:204, 2] = 0.95
    output = NetworkOutput(_info(3))
    box = Letterbox.fit(512, 384, 256, 192)
    coarse = output.mask(probs, box, at_input_resolution=False)
    assert [(r.class_id, r.x0, r.y0, r.x1, r.y1, r.area) for r in output.regions(coarse)] == \
        [(1, 60, 40, 120, 80, 600), (2, 400, 200, 408, 220, 40)]  # area: mask pixels
    assert [r.class_id for r in output.regions(coarse, min_area=41)] == [1]
    fine = output.mask(probs, box)
    assert fine.windows is not None and fine.size == (512, 384)
    for near, far in zip(output.regions(fine), output.regions(coarse)):
        assert near.class_id == far.class_id and near.score == pytest.approx(0.95, abs=0.01)
        assert max(abs(a - b) for a, b in zip((near.x0, near.y0, near.x1, near.y1),
                                              (far.x0, far.y0, far.x1, far.y1))) <= 1


def test_network_output_places_the_box_on_a_smaller_output_grid():
    """An output at half the input's size (a stride-2 stem) covers the letterboxed input."""
    box = Letterbox.for_input((360, 640), (192, 256))  # 16:9 in 4:3: padded top and bottom
    assert box.pad_y > 0
    half = box.on_grid(128, 96)
    raw = np.zeros((96, 128, 2), np.float32)
    raw[..., 0] = 1.0  # the padding reads background
    raw[half.pad_y:half.pad_y + half.content_h, half.pad_x:half.pad_x + half.content_w] = \
        (0.0, 1.0)  # the frame's content: class 1 everywhere
    mask = NetworkOutput(_info(2)).mask(raw, box)
    assert mask.size == (640, 360) and (mask.ids == 1).all()


def test_an_argmax_head_gives_ids_without_scores():
    ids = np.zeros((192, 256, 1), np.int64)
    ids[50:70, 100:140] = 3
    output = NetworkOutput(_info(4, OutputSpec('argmax')))
    box = Letterbox.for_input((480, 640), (192, 256))
    mask = output.mask(ids, box)
    assert mask.planes is None and mask.windows is None
    np.testing.assert_array_equal(mask.ids, id_mask(ids, box, at_input_resolution=True))
    assert [(r.class_id, r.x0, r.y0, r.x1, r.y1, r.score) for r in output.regions(mask)] == \
        [(3, 250, 125, 350, 175, 1.0)]


def test_network_output_colours_and_an_overlay_scaled_up_to_the_image():
    probs = np.zeros((192, 256, 4), np.float32)
    probs[..., 0] = 0.9
    probs[40:80, 60:120, 2] = 0.95
    output = NetworkOutput(_info())
    mask = output.mask(probs, Letterbox.fit(640, 480, 256, 192), at_input_resolution=False)
    colors = output.colors(mask.ids, mask.windows)
    np.testing.assert_array_equal(colors, output.palette[mask.ids])
    rgb = RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    picture = output.overlay(rgb, colors, mask.ids, 0.5, mask.windows)
    assert picture.shape == rgb.shape
    np.testing.assert_array_equal(picture[:90], rgb[:90])  # background: the input as it is
    blended = (rgb[110:190, 160:290].astype(int) + output.palette[2]) / 2
    assert np.abs(picture[110:190, 160:290] - blended).max() <= 1


def _region_rows(found):
    """Regions as comparable rows, in the windowed order (class, top, left)."""
    return sorted([(r.class_id, r.x0, r.y0, r.x1, r.y1, r.area, r.score) for r in found],
                  key=lambda row: (row[0], row[2], row[1]))


@pytest.mark.parametrize('size', [(640, 480), (1280, 720), (800, 600)])
def test_windows_around_objects_give_the_whole_resize_mask_and_regions(size):
    """The real model's outputs on shifted scenes: the same mask pixel for pixel, and the same
    regions with the same scores, as resizing every plane over the whole frame."""
    import cv2

    from jetson_seg.model_loader import open_model
    from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline

    engine, info = open_model('', 'litert', threads=1)
    pipeline = SegmentationPipeline(engine, info, PipelineConfig())
    output = NetworkOutput(info)
    stream = scene_stream(31, SceneSpec(shift_rate=0.3))
    windowed = 0
    for _ in range(12):
        image = cv2.resize(next(stream).image, size, interpolation=cv2.INTER_AREA)
        inferred = pipeline.infer_batch([DecodedImage(image, 'rgb')])
        raw = inferred.probs[0]
        box = inferred.boxes[0].on_grid(raw.shape[1], raw.shape[0])
        scores = class_scores(raw, info.output)
        expected, whole = _whole_frame(scores, box)
        levels = score_levels(scores, box)
        windows = object_windows(class_mask(levels), size)
        assert windows is not None  # aligned scales, small objects
        planes = plane_buffers(None, len(levels), size)
        mask = class_mask_in_windows(levels, windows, planes)
        np.testing.assert_array_equal(mask, expected)
        keeps = [window.keep for window in windows]
        for min_area in (1, 32):
            assert _region_rows(find_regions(mask, planes, 4, min_area, keeps)) == \
                _region_rows(find_regions(expected, whole, 4, min_area))
        made = output.mask(raw, inferred.boxes[0])  # the node's path: windows where it can
        np.testing.assert_array_equal(made.ids, expected)
        assert made.windows == tuple(keeps)
        assert _region_rows(output.regions(made)) == \
            _region_rows(find_regions(expected, whole, 4, 1))
        result = pipeline.run(DecodedImage(image, 'rgb'), Wanted())  # colours and overlay too
        np.testing.assert_array_equal(result.mask, expected)
        colors = color_mask(expected, palette_lut(output.palette))
        np.testing.assert_array_equal(result.color_mask, colors)
        np.testing.assert_array_equal(result.overlay, blend(image, colors, expected, 0.5))
        assert result.windows is not None and len(result.windows) == len(windows)
        assert _region_rows(result.regions) == \
            _region_rows(find_regions(expected, whole, 4, 32))
        windowed += bool(windows)
    engine.close()
    assert windowed >= 8  # most frames hold objects the model finds


def test_object_windows_fall_back_where_they_cannot_be_exact_or_save_nothing():
    labels = np.zeros((192, 256), np.uint8)
    assert object_windows(labels, (640, 480)) == []  # nothing found: nothing to resize
    assert class_mask_in_windows([labels] * 4, [], plane_buffers(None, 4, (640, 480))).max() == 0
    labels[40:60, 30:50] = 2
    assert len(object_windows(labels, (640, 480))) == 1
    assert object_windows(labels, (641, 480)) is None  # 641/256: no aligned window start
    labels[:150, :200] = 1  # one object over most of the frame: the whole resize is cheaper
    assert object_windows(labels, (640, 480)) is None


def test_colours_and_overlay_in_windows_equal_the_whole_frame_and_any_background_colour():
    mask = np.zeros((120, 160), np.uint8)
    mask[10:30, 20:60], mask[80:100, 100:130] = 1, 3
    windows = [(slice(5, 35), slice(15, 65)), (slice(75, 105), slice(95, 135)),
               (slice(8, 20), slice(18, 40))]  # overlapping windows are fine
    rgb = RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for background in ((0, 0, 0), (40, 40, 40)):  # not black: looked up everywhere
        lut = palette_lut(np.array([background, (200, 0, 0), (0, 200, 0), (0, 0, 200)],
                                   np.uint8))
        colors = color_mask(mask, lut)
        np.testing.assert_array_equal(color_mask(mask, lut, windows), colors)
        np.testing.assert_array_equal(blend(rgb, colors, mask, 0.4, windows),
                                      blend(rgb, colors, mask, 0.4))


def test_regions_in_overlapping_windows_are_the_whole_frame_regions_once_each():
    """Objects 3 network pixels apart: their windows overlap and each holds part of another."""
    labels = np.zeros((192, 256), np.uint8)
    labels[40:60, 30:50], labels[45:65, 53:70] = 1, 1  # same class, apart
    labels[40:50, 20:27] = 2
    labels[100:104, 0:3] = 3  # at the frame's edge
    mask = cv2.resize(labels, (640, 480), interpolation=cv2.INTER_NEAREST)
    planes = [cv2.resize((labels == k).astype(np.uint8) * 200, (640, 480)) for k in range(4)]
    windows = [window.keep for window in object_windows(labels, (640, 480))]

    def overlap(a, b):
        return all(p.start < q.stop and q.start < p.stop for p, q in zip(a, b))
    assert len(windows) == 4
    assert sum(overlap(a, b) for i, a in enumerate(windows) for b in windows[i + 1:]) >= 2
    for min_area in (1, 50):
        assert _region_rows(find_regions(mask, planes, 4, min_area, windows)) == \
            _region_rows(find_regions(mask, planes, 4, min_area))


def test_class_mask_equals_numpy_argmax_including_ties():
    probs = RNG.random((37, 53, 4)).astype(np.float32)
    probs[0, :5] = 0.5  # exact ties: the first class must win, like np.argmax
    planes = [probs[..., k].copy() for k in range(4)]
    np.testing.assert_array_equal(class_mask(planes), np.argmax(probs, axis=2))


def test_class_mask_reuses_scratch_but_returns_a_new_mask_each_frame():
    scratch = ArgmaxScratch.fitting(None, (37, 53), 4)
    masks = []
    for _ in range(3):
        probs = RNG.random((37, 53, 4)).astype(np.float32)
        masks.append((class_mask([probs[..., k].copy() for k in range(4)], scratch),
                      np.argmax(probs, axis=2)))
    assert ArgmaxScratch.fitting(scratch, (37, 53), 4) is scratch
    assert ArgmaxScratch.fitting(scratch, (37, 54), 4) is not scratch
    for mask, expected in masks:  # earlier masks are not overwritten by later frames
        np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize('src', [(640, 480), (320, 320), (1280, 400), (200, 600), (256, 192)])
def test_letterbox_and_inverse_map_pixels_back(src):
    box = Letterbox.fit(*src, 256, 192)
    assert box.content_w <= 256 and box.content_h <= 192
    assert box.content_w == 256 or box.content_h == 192  # fills one side
    image = np.zeros((src[1], src[0], 3), np.uint8)
    image[:, : src[0] // 2] = 200  # left half bright
    net = to_network_input(DecodedImage(image, 'rgb'), (192, 256), box=box)
    assert net.shape == (192, 256, 3)
    if box.pad_x:  # padding is black, content is centred
        assert net[:, :box.pad_x - 1].max() == 0 and net[:, -box.pad_x + 1:].max() == 0
    # a class-probability map built from the network image maps back onto the input grid
    probs = np.zeros((192, 256, 2), np.float32)
    probs[..., 1] = net[..., 0] > 100
    probs[..., 0] = 1 - probs[..., 1]
    mask = NetworkOutput(_info(2)).mask(probs, box).ids
    assert mask.shape == (src[1], src[0])
    left, right = mask[:, : src[0] // 2 - 3], mask[:, src[0] // 2 + 3:]
    assert left.mean() > 0.99 and right.mean() < 0.01


def test_overlay_keeps_background_and_blends_objects():
    rgb = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:10] = 2
    palette = np.array(CLASS_COLORS, np.uint8)
    out = blend(rgb, color_mask(mask, palette_lut(palette)), mask, 0.5)
    np.testing.assert_array_equal(out[mask == 0], rgb[mask == 0])
    mixed = (rgb[mask == 2].astype(int) + palette[2].astype(int)) / 2
    assert np.abs(out[mask == 2] - mixed).max() <= 1


def test_regions_match_drawn_objects_with_scores():
    scene = next(scene_stream(4))
    probs = np.full(scene.mask.shape + (4,), 0.1, np.float32)
    rows, cols = np.indices(scene.mask.shape)
    probs[rows, cols, scene.mask] = 0.7
    planes = score_levels(probs, Letterbox.fit(*scene.mask.shape[::-1],
                                               *scene.mask.shape[::-1]))
    found = find_regions(scene.mask, planes, 4, min_area=1)
    assert {(r.x0, r.y0, r.x1, r.y1, r.class_id, r.area) for r in found} == set(
        boxes_from_mask(scene.mask))
    assert all(r.score == pytest.approx(0.7, abs=0.5 / SCORE_SCALE) for r in found)
    small = find_regions(scene.mask, planes, 4, min_area=10_000)
    assert all(r.area >= 10_000 for r in small) and len(small) < len(found)


def _two_squares() -> tuple[np.ndarray, np.ndarray]:
    """A 480x640 RGBA frame with a red and a blue square (class 1) on grey, and its mask."""
    image = np.full((480, 640, 4), (90, 90, 90, 255), np.uint8)
    mask = np.zeros((480, 640), np.uint8)
    for (x, y), color in (((100, 100), (200, 20, 30)), ((400, 260), (10, 40, 220))):
        image[y:y + 80, x:x + 80, :3] = color
        mask[y:y + 80, x:x + 80] = 1
    return image, mask


@pytest.mark.parametrize('grid', [(640, 480), (256, 192)])
def test_region_colors_are_each_object_s_median_colour_on_any_mask_grid(grid):
    image, mask = _two_squares()
    ids = cv2.resize(mask, grid, interpolation=cv2.INTER_NEAREST)
    scale = 640 / grid[0]
    regions = [Region(r.class_id, round(r.x0 * scale), round(r.y0 * scale), round(r.x1 * scale),
                      round(r.y1 * scale), r.area, r.score)
               for r in find_regions(ids, None, 2)]
    image[100:180, 100:102, :3] = 90  # an outline pixel column blended into the background
    colored = region_colors(regions, image, ids)
    assert [r.color for r in colored] == [
        pytest.approx((200 / 255, 20 / 255, 30 / 255)),
        pytest.approx((10 / 255, 40 / 255, 220 / 255))]  # alpha left out, median: no grey
    assert [replace(r, color=None) for r in colored] == regions


def test_region_colors_of_a_mono_image_and_of_a_box_without_its_class():
    image, mask = _two_squares()
    gray = np.ascontiguousarray(image[..., :1])
    [found, _] = find_regions(mask, None, 2)
    assert region_colors([found], gray, mask)[0].color == pytest.approx((200 / 255,))
    elsewhere = Region(2, *(found.x0, found.y0, found.x1, found.y1), found.area, 1.0)
    assert region_colors([elsewhere], image, mask)[0].color is None


def test_network_input_reuses_a_dirty_buffer_and_keeps_padding_black():
    image = np.full((600, 200, 3), 90, np.uint8)  # tall: padded left and right
    out = np.full((192, 256, 3), 255, np.uint8)
    result = to_network_input(DecodedImage(image, 'rgb'), (192, 256), out)
    box = Letterbox.for_input((600, 200), (192, 256))
    assert result is out and box.pad_x > 0
    assert out[:, :box.pad_x].max() == 0 and out[:, box.pad_x + box.content_w:].max() == 0
    assert (box.content(out) == 90).all()
    bgr = DecodedImage(np.ascontiguousarray(image[..., ::-1]), 'bgr')  # same pixels, bgr order
    np.testing.assert_array_equal(to_network_input(bgr, (192, 256)), out)


def test_color_mask_is_the_palette_lookup():
    mask = RNG.integers(0, 4, (48, 64), dtype=np.uint8)
    palette = np.array(CLASS_COLORS, np.uint8)
    np.testing.assert_array_equal(color_mask(mask, palette_lut(palette)), palette[mask])


def test_regions_without_scores_score_one():
    mask = np.zeros((40, 60), np.uint8)
    mask[5:15, 5:20], mask[20:30, 30:50] = 1, 2
    found = find_regions(mask, None, 3)
    assert {(r.class_id, r.x0, r.y0, r.x1, r.y1, r.score) for r in found} == \
        {(1, 5, 5, 20, 15, 1.0), (2, 30, 20, 50, 30, 1.0)}


def test_heads_become_class_scores_with_the_same_argmax():
    logits = RNG.normal(0, 3, (12, 16, 4)).astype(np.float32)
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(class_scores(logits, OutputSpec('logits')), softmax, rtol=1e-5)
    blobs = logits.copy()
    blobs[..., 0] += 30.0  # background everywhere but two separate blobs
    blobs[2:6, 2:7, 1] += 60.0
    blobs[7:11, 9:15, 2] += 60.0
    blob_softmax = np.exp(blobs) / np.exp(blobs).sum(-1, keepdims=True)
    box = Letterbox.fit(16, 12, 16, 12)
    output = NetworkOutput(_info(4, OutputSpec('logits')))
    mask = output.mask(blobs, box)
    found = output.regions(mask)  # a region's score: the mean softmax over its pixels
    np.testing.assert_array_equal(mask.ids, blob_softmax.argmax(-1))
    assert {(r.class_id, r.area) for r in found} == {(1, 20), (2, 24)}
    for region in found:
        window = blob_softmax[region.y0:region.y1, region.x0:region.x1, region.class_id]
        assert region.score == pytest.approx(float(window.mean()), abs=0.5 / SCORE_SCALE)
    np.testing.assert_array_equal(class_ids(logits[None], OutputSpec('logits'))[0],
                                  softmax.argmax(-1))
    sigmoid = RNG.uniform(0, 1, (12, 16, 2)).astype(np.float32)
    scores = class_scores(sigmoid, OutputSpec('sigmoid', threshold=0.6))
    expected = np.where(sigmoid.max(-1) > 0.6, sigmoid.argmax(-1) + 1, 0)
    np.testing.assert_array_equal(scores.argmax(-1), expected)
    np.testing.assert_array_equal(class_ids(sigmoid[None], OutputSpec('sigmoid', 0.6))[0],
                                  expected)


def test_an_id_map_is_cropped_and_resized_nearest():
    ids = np.zeros((192, 256), np.int64)
    ids[:, 128:] = 2
    box = Letterbox.for_input((480, 640), (192, 256))
    mask = id_mask(ids[..., None], box, at_input_resolution=True)
    assert mask.shape == (480, 640) and mask.dtype == np.uint8
    assert set(np.unique(mask[:, :310])) == {0} and set(np.unique(mask[:, 330:])) == {2}


@pytest.mark.parametrize('spec', [
    InputSpec(dtype='float32', mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    InputSpec(dtype='float32', channel_order='bgr', mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    InputSpec(channel_order='bgr')], ids=['float_imagenet', 'float_bgr_pm1', 'uint8_bgr'])
def test_network_input_normalises_as_the_model_expects(spec):
    rgb = RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    net = NetworkInput(spec, (192, 256))
    batch = net.fill([DecodedImage(rgb, 'rgb')] * 2, [net.letterbox((480, 640))] * 2)
    placed = to_network_input(DecodedImage(rgb, 'rgb'), (192, 256))
    ordered = placed[..., ::-1] if spec.channel_order == 'bgr' else placed
    if spec.dtype == 'uint8':
        expected = ordered
    else:
        expected = (ordered / 255.0 - np.array(spec.mean)) / np.array(spec.std)
    assert batch.dtype == np.dtype(spec.dtype) and batch.shape == (2, 192, 256, 3)
    np.testing.assert_allclose(batch[1], expected, atol=1e-5)
