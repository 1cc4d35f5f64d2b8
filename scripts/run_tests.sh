#!/usr/bin/env bash
# Run the test suite (or the tests named in the arguments) in the project venv, isolated from any
# other ROS graph on the machine. VENV=.venv-jazzy runs them with Jazzy's rclpy instead.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE  # another venv's ROS bootstrap must not leak into this one
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((100 + $$ % 100))}"
# Discovery on this machine only and the large-image Fast DDS profile, in the variables this
# venv's ROS distro reads (jetson_seg/ros/rclpy_compat.py).
ISOLATION=$("$VENV/bin/python" -m jetson_seg.ros.rclpy_compat --shell \
            "$PWD/config/fastdds_large_images.xml")
eval "$ISOLATION"
export ROS_LOG_DIR="$(mktemp -d -t jetson_seg_test_log.XXXX)"
export TF_CPP_MIN_LOG_LEVEL=2
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -v --timeout 600 "$@"
