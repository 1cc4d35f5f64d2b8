#!/usr/bin/env bash
# Create or update .venv-jazzy: ROS 2 Jazzy's rclpy and Fast DDS from PyPI (requirements-jazzy.txt,
# no TensorFlow), interfaces/ built against Jazzy, and jetson_seg from this tree (a .pth file, so
# the tree's egg-info stays .venv's). `make test` runs the node-over-DDS tests in it after the main
# suite (scripts/run_tests.sh with VENV=.venv-jazzy). Idempotent like setup_env.sh (stamped).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
ROOT="$PWD"
NAME=.venv-jazzy
VENV="$ROOT/$NAME"
PY="$VENV/bin/python"
STAMP="$VENV/.jetson_seg_setup"
FINGERPRINT_FILES="requirements-jazzy.txt requirements/serve.txt requirements/litert.txt
  scripts/setup_jazzy_env.sh scripts/env_lib.sh"
source scripts/env_lib.sh

exit_if_ready
ensure_system_tools
ensure_venv

step "pip install -r requirements-jazzy.txt"
pip_q install -r requirements-jazzy.txt || die "pip install -r requirements-jazzy.txt failed (output above)"
"$PY" -c "import rclpy, std_msgs.msg, lifecycle_msgs.msg" \
  || die "rclpy does not import in $NAME after installing requirements-jazzy.txt"

build_interfaces

step "jetson_seg from $ROOT (.pth)"
SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$ROOT" > "$SITE/jetson_seg_tree.pth"
"$PY" -c "import jetson_seg.ros.rclpy_compat" || die "jetson_seg does not import in $NAME"

finish
