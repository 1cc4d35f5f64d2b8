#!/usr/bin/env bash
# Create or update the project venv (.venv): pinned Python packages, vision_msgs when no ROS
# install provides it, and jetson_seg itself (editable). Re-running on a ready venv takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
STAMP="$VENV/.jetson_seg_setup"
step() { printf '[setup %5ss] %s\n' "$SECONDS" "$*"; }

fingerprint() {
  cat requirements.txt requirements-core.txt setup.py setup.cfg package.xml \
      $(find interfaces -type f | sort) | sha256sum | cut -d' ' -f1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ] && [ -x "$PY" ]; then
  echo "environment ready: .venv"
  exit 0
fi

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v g++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing build tools: ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x "$PY" ]; then
  step "creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
# Another venv's ROS bootstrap flag must not leak into this one (ENVIRONMENT notes).
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE

step "installing pinned packages (requirements.txt)"
"$PY" -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
"$PY" -c "import tensorflow, rclpy, cv2, rosbags" 2>/dev/null \
  || { echo "pinned packages did not install; see pip output above" >&2; exit 1; }

if ! "$PY" -c "import vision_msgs.msg" 2>/dev/null; then
  step "building vision_msgs interfaces into .venv"
  PY_INCLUDE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  NP_INCLUDE=$("$PY" -c "import numpy; print(numpy.get_include())")
  # The message wheels' CMake exports name the include dirs of the machine that built them.
  grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null \
    | xargs -r sed -i \
      -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NP_INCLUDE#g" \
      -e "s#/opt/python/cp311-cp311/include/python3.11#$PY_INCLUDE#g"
  BUILD=$(mktemp -d -t vision_msgs_build.XXXX)
  export CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV"
  PATH="$VENV/bin:$PATH" cmake -S interfaces/vision_msgs -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF \
    > "$BUILD.log" 2>&1 || { tail -30 "$BUILD.log" >&2; exit 1; }
  PATH="$VENV/bin:$PATH" cmake --build "$BUILD" -j2 >> "$BUILD.log" 2>&1 \
    || { tail -30 "$BUILD.log" >&2; exit 1; }
  cmake --install "$BUILD" >> "$BUILD.log" 2>&1 || { tail -30 "$BUILD.log" >&2; exit 1; }
  rm -rf "$BUILD" "$BUILD.log"
  "$PY" -c "from vision_msgs.msg import Detection2DArray, LabelInfo" \
    || { echo "vision_msgs was built but does not import" >&2; exit 1; }
fi

step "installing jetson_seg (editable)"
"$PY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true

fingerprint > "$STAMP"
step "environment ready: .venv"
