"""The model description: defaults, every refusal naming the file and what to change."""

import json

import pytest

from jetson_seg.errors import JetsonSegError, ModelError
from jetson_seg.model_info import (ModelInfo, default_model_dir, default_palette,
                                   parse_description, read_model_info, write_model_json)

MINIMAL = {'class_names': ['background', 'person']}


def test_defaults_are_uint8_letterbox_softmax_with_a_distinct_palette(tmp_path):
    info = parse_description(MINIMAL, 'x/model.json', tmp_path)
    assert (info.input.dtype, info.input.resize, info.output.type) == \
        ('uint8', 'letterbox', 'softmax')
    assert info.class_colors == default_palette(2) and info.class_colors[0] == (0, 0, 0)
    palette = default_palette(40)
    assert len(set(palette)) == 40


def test_the_issue_example_parses(tmp_path):
    example = {'input': {'height': 256, 'width': 256, 'dtype': 'float32',
                         'channel_order': 'rgb', 'mean': [0.0, 0.0, 0.0],
                         'std': [1.0, 1.0, 1.0], 'resize': 'stretch'},
               'output': {'type': 'sigmoid', 'threshold': 0.5},
               'class_names': ['background', 'person'],
               'class_colors': [[0, 0, 0], [255, 0, 0]]}
    info = parse_description(example, 'model.json', tmp_path)
    assert info.input_hw == (256, 256) and info.output.type == 'sigmoid'
    assert info.class_colors == ((0, 0, 0), (255, 0, 0))


@pytest.mark.parametrize('change, message', [
    ({'class_names': []}, 'class_names must be a non-empty list'),
    ({'class_names': [f'c{i}' for i in range(257)]}, 'at most 256 classes'),
    ({'input': {'dtype': 'float16'}}, "dtype 'float16' is not one of uint8, float32"),
    ({'input': {'channel_order': 'rgba'}}, "channel_order 'rgba'"),
    ({'input': {'resize': 'crop'}}, "resize 'crop' is not one of letterbox, stretch"),
    ({'input': {'std': [1, 0, 1]}}, 'std must be three positive numbers'),
    ({'input': {'mean': [0.5]}}, 'mean must be three numbers'),
    ({'input': {'height': -3}}, 'input.height must be a positive whole number'),
    ({'input': {'height': 100000, 'width': 100000}}, r'input.height 100000 is outside 8-8192'),
    ({'input': {'height': 256, 'width': 8193}}, r'input.width 8193 is outside 8-8192'),
    ({'input': {'height': 7, 'width': 256}}, r'input.height 7 is outside 8-8192'),
    ({'input': {'chanel_order': 'bgr'}}, r"unknown key\(s\) \['chanel_order'\]"),
    ({'output': {'type': 'softmax2d'}}, "type 'softmax2d' is not one of softmax, logits"),
    ({'output': {'threshold': 1.5}}, 'threshold must be between 0 and 1'),
    ({'output': 'softmax'}, 'input and output must be JSON objects'),
    ({'class_colors': [[0, 0, 0]]}, r'one \[r, g, b\] \(0-255\) per class \(2 classes\)'),
    ({'class_colors': [[0, 0, 0], [300, 0, 0]]}, r'one \[r, g, b\]'),
    ({'output': {'type': 'sigmoid'}, 'class_names': ['person']}, 'background first'),
])
def test_every_mismatch_is_refused_with_the_file_and_what_to_change(tmp_path, change, message):
    with pytest.raises(ModelError, match=message) as refused:
        parse_description({**MINIMAL, **change}, '/models/p/model.json', tmp_path)
    assert '/models/p/model.json' in str(refused.value)


def test_dynamic_size_without_height_and_width_is_refused_when_needed(tmp_path):
    info = parse_description(MINIMAL, 'model.json', tmp_path)
    with pytest.raises(ModelError, match='give input.height and input.width'):
        info.input_hw
    assert info.with_input_size(96, 128).input_hw == (96, 128)


def test_write_then_read_round_trips_and_keeps_records(tmp_path):
    info = parse_description({**MINIMAL, 'output': {'type': 'logits'},
                              'input': {'dtype': 'float32', 'mean': [0.485, 0.456, 0.406],
                                        'std': [0.229, 0.224, 0.225]}}, 'm', tmp_path)
    write_model_json(tmp_path, info, {'training': {'epochs': 3}})
    again = read_model_info(tmp_path)
    assert again == info
    assert json.loads((tmp_path / 'model.json').read_text())['training'] == {'epochs': 3}


def test_missing_or_broken_model_json(tmp_path):
    with pytest.raises(ModelError, match='model description missing'):
        read_model_info(tmp_path)
    (tmp_path / 'model.json').write_text('{"class_names": ')
    with pytest.raises(JetsonSegError, match='not valid JSON'):
        read_model_info(tmp_path)


def test_packaged_default_model_description():
    info = read_model_info(default_model_dir())
    assert isinstance(info, ModelInfo)
    assert info.class_names == ('background', 'disc', 'rectangle', 'triangle')
    assert info.input_hw == (192, 256) and info.input.dtype == 'uint8'


def test_the_size_bounds_are_inclusive_and_named_in_a_model_json(tmp_path):
    edge = {**MINIMAL, 'input': {'height': 8, 'width': 8192}}
    assert parse_description(edge, 'm', tmp_path).input_hw == (8, 8192)
    (tmp_path / 'model.json').write_text(json.dumps(
        {**MINIMAL, 'input': {'height': 100000, 'width': 100000}}))
    with pytest.raises(ModelError, match='input.height 100000') as refused:
        read_model_info(tmp_path)
    assert str(tmp_path / 'model.json') in str(refused.value)


def test_a_network_size_outside_the_bounds_is_refused_when_filled_in(tmp_path):
    info = parse_description(MINIMAL, 'model.json', tmp_path)
    assert info.check_network((96, 128), 2, 'uint8', 'net').input_hw == (96, 128)
    with pytest.raises(ModelError, match=r'net takes 100000x4 \(width x height\), outside'):
        info.check_network((4, 100000), 2, 'uint8', 'net')
