#!/usr/bin/env bash
# Run the whole test suite in the project venv, isolated from any other ROS graph on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((100 + $$ % 100))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOG_DIR="$(mktemp -d -t jetson_seg_test_log.XXXX)"
export FASTDDS_DEFAULT_PROFILES_FILE="$PWD/config/fastdds_large_images.xml"
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -p no:cacheprovider -v --timeout 600 "$@"
