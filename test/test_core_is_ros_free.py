"""The core (image work, model, engines, optimizer steps) must run without rclpy.

Only the thin ROS modules may import rclpy; the core may use message *types* only where it
builds messages (messages.py). Checked in a fresh interpreter, module by module.
"""

import json
import subprocess
import sys

CORE = ('image_conversion', 'preprocess', 'postprocess', 'pipeline', 'engines.base',
        'engines.gpu_memory',
        'engines.tf_graph', 'engines.litert', 'engines.tftrt', 'freeze', 'convert_litert',
        'convert_tftrt', 'calibration', 'optimizer', 'artefacts', 'model_store', 'parameters',
        'scenes', 'model', 'train', 'metrics', 'bags', 'report', 'frame_stats', 'messages')
ROS = ('rclpy', 'sensor_msgs', 'std_msgs', 'vision_msgs', 'diagnostic_msgs', 'rosidl_runtime_py')

PROBE = """
import importlib, json, sys
ros = set(sys.argv[1].split(','))
found = {}
for name in sys.argv[2].split(','):
    importlib.import_module('jetson_seg.' + name)
    found[name] = sorted({m.split('.')[0] for m in sys.modules} & ros)
print(json.dumps(found))
"""


def test_core_modules_import_no_ros_module():
    out = subprocess.run([sys.executable, '-c', PROBE, ','.join(ROS), ','.join(CORE)],
                         capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(found) == set(CORE)
    # imports accumulate in one interpreter, so the first module that pulls one in is named
    before_messages = {name: mods for name, mods in found.items() if name != 'messages'}
    assert all(mods == [] for mods in before_messages.values()), before_messages
    assert 'rclpy' not in found['messages'], found['messages']  # message types only
