"""The benchmark's stages-only mode: what commits are compared by, run by run."""

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
