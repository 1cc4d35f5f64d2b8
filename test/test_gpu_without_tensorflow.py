"""A Jetson as most teams have it: an NVIDIA GPU device node and no TensorFlow installed.

The node must configure and serve the packaged model there. The GPU cannot exist on these
machines, so the test makes the part the package looks at: a private mount namespace whose
/dev holds an `nvidia0` beside the real devices, and a Python where TensorFlow (and Keras)
cannot be imported, as if never installed.
"""

from __future__ import annotations

import subprocess
import sys
from itertools import count
from pathlib import Path

import numpy as np
import pytest

from image_msgs import image_from_rgb
from ros_harness import NodeProcess
from jetson_seg.model_loader import auto_order
from jetson_seg.tools.node_client import NodeClient

#: Runs its arguments with /dev replaced by a tmpfs holding the real entries plus nvidia0.
FAKE_GPU = r'''
set -e
real=$(mktemp -d)
mount --rbind /dev "$real"
mount -t tmpfs fake_gpu_dev /dev
for entry in "$real"/*; do
  name="/dev/$(basename "$entry")"
  if [ -d "$entry" ] && [ ! -L "$entry" ]; then mkdir "$name"; mount --rbind "$entry" "$name"
  else ln -s "$entry" "$name"; fi
done
touch /dev/nvidia0
exec "$@"
'''
WRAPPER = ('unshare', '--mount', '--propagation', 'private', 'bash', '-c', FAKE_GPU, 'fake_gpu')
#: A Python start-up hook that makes TensorFlow and Keras unimportable.
NO_TENSORFLOW = '''"""A machine without TensorFlow: importing it fails, find_spec finds none."""
import sys
for name in ('tensorflow', 'keras', 'tf_keras'):
    sys.modules[name] = None
'''
PROBE = '''
from jetson_seg.engines.gpu import (configure_gpu_memory, gpu_device_present, installed,
                                    onnxruntime_gpu, tensorflow_gpu)
print(gpu_device_present(), installed('tensorflow'), tensorflow_gpu(), onnxruntime_gpu(),
      configure_gpu_memory(512))
'''
STAMPS = count(1)


@pytest.fixture(scope='module')
def no_tensorflow(tmp_path_factory) -> dict[str, str]:
    """PYTHONPATH entries that hide TensorFlow from a child Python."""
    folder = tmp_path_factory.mktemp('no_tensorflow')
    (folder / 'sitecustomize.py').write_text(NO_TENSORFLOW)
    return {'PYTHONPATH': str(folder)}


def test_the_fake_machine_has_a_gpu_device_and_no_tensorflow(no_tensorflow, ros_env):
    """The stand-in shows what the package asks about, and the GPU questions need no TF."""
    out = subprocess.run([*WRAPPER, sys.executable, '-c', PROBE], capture_output=True,
                         text=True, env={**ros_env, **no_tensorflow}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['True', 'False', 'False', 'False', '[]'], out.stdout
    assert not Path('/dev/nvidia0').exists()  # only inside the namespace


def test_node_serves_the_packaged_model_on_a_gpu_machine_without_tensorflow(no_tensorflow,
                                                                            ros_env):
    node = NodeProcess({'threads': 1, 'gpu_memory_limit_mb': 512}, {**ros_env, **no_tensorflow},
                       namespace='/no_tf_gpu', wrapper=WRAPPER)
    client = NodeClient.on_own_node('no_tf_gpu_client', namespace='/no_tf_gpu',
                                    outputs=('mask',))
    try:
        node.wait_for_output('active: listening')
        assert 'engine=litert' in node.text, node.text
        client.connect(node_proc=node)
        frame = np.zeros((480, 640, 3), np.uint8)
        frame[200:280, 280:360] = (230, 40, 40)  # a red box on black
        answer = client.request(_stamped(image_from_rgb(frame, 'rgb8')))
        mask = np.frombuffer(answer['mask'].data, np.uint8).reshape(480, 640)
        assert (mask[220:260, 300:340] != 0).mean() > 0.5  # the object, segmented
        assert (mask[:100] == 0).all()
    finally:
        client.close()
        assert node.stop() == 0, node.text
    assert 'Traceback' not in node.text and 'ERROR' not in node.text, node.text


def _stamped(msg):
    msg.header.stamp.sec = next(STAMPS)
    msg.header.frame_id = 'camera'
    return msg


@pytest.mark.parametrize('tf_gpu, ort_gpu, expected', [
    (False, False, ['litert', 'onnxruntime', 'tf']),        # a CPU
    (True, True, ['tftrt', 'onnxruntime', 'tf', 'litert']),  # a GPU with TF-TRT
    (False, True, ['onnxruntime', 'litert', 'tf']),         # a Jetson without TensorFlow
])
def test_auto_order_prefers_what_the_machine_runs_fastest(tf_gpu, ort_gpu, expected,
                                                          monkeypatch):
    """The GPU questions are stood in for (no GPU here); the order is the package's own."""
    import jetson_seg.model_loader as store

    asked = []
    monkeypatch.setattr(store, 'tensorflow_gpu', lambda: asked.append('tf') or tf_gpu)
    monkeypatch.setattr(store, 'onnxruntime_gpu', lambda: asked.append('ort') or ort_gpu)
    assert auto_order(('litert', 'tf', 'tftrt', 'onnxruntime')) == expected
    asked.clear()
    lean = [name for name in expected if name in ('litert', 'onnxruntime')]
    assert auto_order(('litert', 'onnxruntime')) == lean
    assert 'tf' not in asked  # no TensorFlow engine among the candidates: TF is not asked
    assert auto_order(('litert',)) == ['litert']
