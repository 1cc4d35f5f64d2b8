#!/usr/bin/env bash
# The node-over-DDS tests again with ROS 2 Jazzy's rclpy and Fast DDS 2 (`make test` runs this
# after the main suite): sets up .venv-jazzy (seconds when ready), then runs the contract,
# lifecycle, parameter, signal and objects-in-3D tests, the rclpy_compat tests and the
# Humble-API test in it.
# .venv-jazzy has no TensorFlow: the two signal tests that need a slow engine:=tf load are left
# to the main suite (without TensorFlow their configure fails at once, so they would test nothing).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
T0=$SECONDS
bash scripts/setup_jazzy_env.sh
T1=$SECONDS
status=0
VENV=.venv-jazzy bash scripts/run_tests.sh \
  test/test_rclpy_compat.py test/test_humble_rclpy.py test/test_parameters.py \
  test/test_node_outputs.py test/test_node_input_faults.py test/test_node_cameras_and_load.py \
  test/test_node_lifecycle.py test/test_node_signals.py test/test_node_depth.py \
  -k 'not loading_the_model and not configure_asked_for_by_a_manager' "$@" || status=$?
echo "[jazzy] set-up $((T1 - T0)) s, tests $((SECONDS - T1)) s"
exit $status
