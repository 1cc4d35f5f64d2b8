#!/usr/bin/env bash
# Create or update the project venv (.venv): pinned Python packages (requirements.txt), vision_msgs
# built from interfaces/vision_msgs when no installed package provides it, and jetson_seg itself
# (editable). Idempotent: on a ready venv (stamp matches) it exits in about a second.
# Works from any cwd, without a terminal (CI=true, no stdin). Root on a fresh Debian 12 machine:
# missing cmake/g++/make/python3-venv are installed with apt-get.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
ROOT="$PWD"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
STAMP="$VENV/.jetson_seg_setup"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
# Another venv's ROS bootstrap flag must not leak into this one (see docs: ros-wheels-bootstrapper).
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE

# Everything that decides what the venv holds; missing files count as empty.
fingerprint() {
  {
    for f in requirements.txt requirements/*.txt setup.py setup.cfg package.xml \
             scripts/setup_env.sh; do
      printf '== %s\n' "$f"; cat "$f" 2>/dev/null || true
    done
    find interfaces -type f 2>/dev/null | LC_ALL=C sort | while read -r f; do
      printf '== %s\n' "$f"; cat "$f"
    done || true
  } | sha256sum | cut -d' ' -f1
}
ready() { [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ]; }

if ready; then
  echo "environment ready: .venv"
  exit 0
fi

# One set-up at a time (e.g. parallel `make` targets); the second one finds the stamp ready.
mkdir -p build
exec 9>build/.setup_env.lock
flock 9
if ready; then
  echo "environment ready: .venv"
  exit 0
fi

T0=$SECONDS
STEP_T=$SECONDS
STEP=""
step() {
  [ -n "$STEP" ] && printf '[setup] %-52s done in %3ss\n' "$STEP" "$((SECONDS - STEP_T))"
  STEP="$1"
  STEP_T=$SECONDS
  [ -n "$STEP" ] && printf '[setup] %s ...\n' "$STEP"
  return 0
}
die() { echo "setup_env: $*" >&2; exit 1; }
# pip -q, but with its exit status kept; drops a harmless warning the ROS wheels trigger.
pip_q() {
  local out
  if ! out=$("$PY" -m pip -q "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    return 1
  fi
  printf '%s\n' "$out" | grep -v -e '^$' -e 'is ignored: it is neither a file nor a directory' || true
}

PYTHON="${PYTHON:-python3}"

# --- system tools (apt-get only when something is missing and we are root) -----------------------
need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v g++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
if [ ! -x "$PY" ] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    die "missing: ${need_apt[*]} (install them, e.g. sudo apt-get install -y ${need_apt[*]})"
  fi
  step "apt-get install ${need_apt[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- venv ---------------------------------------------------------------------------------------
if [ ! -x "$PY" ] || ! "$PY" -m pip --version >/dev/null 2>&1; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$PYTHON is $("$PYTHON" --version 2>&1); the ROS 2 wheels need Python 3.11 (set PYTHON=...)"
  step "create .venv ($("$PYTHON" --version 2>&1))"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || { rm -rf "$VENV"; die "python3 -m venv failed"; }
fi

step "pip install -r requirements.txt"
pip_q install -r requirements.txt || die "pip install -r requirements.txt failed (output above)"
"$PY" -c "import rclpy, std_msgs.msg, geometry_msgs.msg" \
  || die "rclpy does not import in .venv after installing requirements.txt"

# --- vision_msgs (not on any registry): build the interface package into the venv ---------------
if ! "$PY" -c "import vision_msgs.msg" 2>/dev/null; then
  step "build interfaces/vision_msgs into .venv (cmake, -j2)"
  PY_INCLUDE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  NP_INCLUDE=$("$PY" -c "import numpy; print(numpy.get_include())")
  # The message wheels' exported CMake files name the include dirs of the machine that built them
  # (/opt/python/cp311-cp311/...): point them at this venv's Python and numpy headers.
  grep -rlZ --include='*.cmake' '/opt/python/cp3' "$VENV/share" 2>/dev/null \
    | xargs -0 -r sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_?core/include#$NP_INCLUDE#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PY_INCLUDE#g"
  BUILD=$(mktemp -d -t vision_msgs_build.XXXXXX)
  LOG="$BUILD.log"
  (
    export CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
    cmake -S interfaces/vision_msgs -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF
    cmake --build "$BUILD" -j2
    cmake --install "$BUILD"
  ) > "$LOG" 2>&1 || { tail -40 "$LOG" >&2; die "vision_msgs build failed (full log: $LOG)"; }
  rm -rf "$BUILD" "$LOG"
  "$PY" -c "from vision_msgs.msg import Detection2DArray, LabelInfo" \
    || die "vision_msgs was built but does not import"
fi

# --- the package itself ---------------------------------------------------------------------------
if [ -f setup.py ] || [ -f pyproject.toml ]; then
  step "pip install --no-deps -e ."
  pip_q install --no-deps --no-build-isolation -e . || die "pip install -e . failed (output above)"
else
  echo "[setup] no setup.py yet: jetson_seg not installed" >&2
fi

# --- test assets: a pretrained model from elsewhere and real photos, from packages on PyPI -------
# MediaPipe's selfie segmentation (Apache-2.0) is a LiteRT person segmenter a team might bring;
# scikit-image ships public-domain photos. Only these files are kept, nothing is installed.
ASSETS="$VENV/share/jetson_seg/test_assets"
if [ ! -f "$ASSETS/selfie_segmentation.tflite" ] || [ ! -f "$ASSETS/astronaut.png" ]; then
  step "test assets (a pretrained .tflite, real photos)"
  DOWNLOAD=$(mktemp -d -t jetson_seg_assets.XXXXXX)
  pip_q download --no-deps --only-binary=:all: -d "$DOWNLOAD" mediapipe==0.10.14 \
    scikit-image==0.24.0 || die "downloading the test assets failed (output above)"
  "$PY" - "$DOWNLOAD" "$ASSETS" <<'PYEOF' || die "extracting the test assets failed"
import pathlib, sys, zipfile
source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
target.mkdir(parents=True, exist_ok=True)
wanted = ('mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite',
          'skimage/data/astronaut.png', 'skimage/data/camera.png', 'skimage/data/coffee.png')
for wheel in source.glob('*.whl'):
    with zipfile.ZipFile(wheel) as archive:
        for name in set(wanted) & set(archive.namelist()):
            (target / pathlib.Path(name).name).write_bytes(archive.read(name))
PYEOF
  rm -rf "$DOWNLOAD"
fi

step ""
fingerprint > "$STAMP"
echo "environment ready: .venv (set up in $((SECONDS - T0)) s)"
