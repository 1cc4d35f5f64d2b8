"""Opening models: every problem names the file and what is wrong."""

import json
import shutil

import pytest

from jetson_seg.errors import EngineError, JetsonSegError, ModelError
from jetson_seg.model_info import default_model_dir
from jetson_seg.model_store import open_model


@pytest.fixture
def model_copy(tmp_path):
    copy = tmp_path / 'model'
    shutil.copytree(default_model_dir(), copy)
    return copy


def test_missing_model_path(tmp_path):
    with pytest.raises(ModelError, match=str(tmp_path / 'nowhere')):
        open_model(str(tmp_path / 'nowhere'))


def test_corrupt_keras_file(model_copy):
    (model_copy / 'model.keras').write_bytes(b'PK\x03\x04 not really a zip')
    with pytest.raises(ModelError, match='cannot load Keras model .*model.keras'):
        open_model(str(model_copy), 'tf')


def test_metadata_that_does_not_match_the_model(model_copy):
    meta = json.loads((model_copy / 'model.json').read_text())
    meta['class_names'].append('extra')
    meta['class_colors'].append([1, 2, 3])
    (model_copy / 'model.json').write_text(json.dumps(meta))
    with pytest.raises(ModelError, match='outputs 4 channel.*5 class_names.*model.json'):
        open_model(str(model_copy), 'tf')


def test_invalid_metadata(model_copy):
    (model_copy / 'model.json').write_text('{"class_names": ')
    with pytest.raises(ModelError, match='model.json is not valid JSON'):
        open_model(str(model_copy), 'tf')


def test_keras_model_cannot_be_served_as_tftrt():
    with pytest.raises(EngineError, match='run optimizer_node'):
        open_model('', 'tftrt')


def test_one_base_error_for_every_refusal(tmp_path):
    """Callers catch JetsonSegError alone: model, engine and setting refusals share it."""
    for args in ((str(tmp_path / 'nowhere'),), ('', 'tftrt'), ('', 'no_such_engine')):
        with pytest.raises(JetsonSegError):
            open_model(*args)


@pytest.mark.parametrize('engine', ['tf', 'litert'])
def test_default_model_opens_with_each_cpu_engine(engine):
    opened, info = open_model('', engine, threads=1)
    assert opened.name == engine and info.class_names[0] == 'background'
