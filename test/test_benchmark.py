"""The benchmark's quick modes: stages only (commits compared run by run), models compared."""

from __future__ import annotations

import json
import subprocess
import sys

STAGES = ('decode', 'preprocess', 'inference', 'postprocess', 'overlay', 'publish')


def test_stages_only_times_every_stage_of_a_real_node(ros_env, tmp_path):
    cmd = [sys.executable, '-m', 'jetson_seg.tools.benchmark', '--stages-only', '2',
           '--output', str(tmp_path), '--domain-id', ros_env['ROS_DOMAIN_ID']]
    done = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures['answered'] > 30  # of 60 frames sent at 30 Hz
    assert set(figures['stages_ms']) == set(STAGES)
    assert all(ms > 0 for ms in figures['stages_ms'].values())
    assert figures['latency_p50_ms'] > figures['stages_ms']['inference']
    assert 0 < figures['node_cpu_cores'] <= 2


def test_models_compares_what_auto_serves_on_one_thread():
    """The default (no path) against another packaged output: each as the node serves it."""
    from jetson_seg.model_info import packaged_model_dir

    small = packaged_model_dir('small_objects') / 'optimized'
    cmd = [sys.executable, '-m', 'jetson_seg.tools.benchmark', '--models', '', str(small),
           '--rounds', '2', '--iterations', '3']
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    default, other = result['models']
    assert (default['model'], default['input'], other['input']) == \
        ('(default)', '256x192', '384x288')
    assert default['served'].startswith('litert/') and other['served'].startswith('litert/')
    assert len(default['ms_p50_runs']) == len(other['ms_p50_runs']) == 2
    assert default['ratio'] == 1.0 and other['ratio'] > 1.0  # 2.25x the pixels, same network
    assert default['ratio_runs'] == [1.0, 1.0] and len(other['ratio_runs']) == 2
