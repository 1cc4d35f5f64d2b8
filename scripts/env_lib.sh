# Shared steps of the venv set-up scripts (setup_env.sh: .venv with Kilted; setup_jazzy_env.sh:
# .venv-jazzy with Jazzy). Sourced, not run. The caller sets ROOT (repository root, the cwd),
# VENV, PY="$VENV/bin/python", STAMP, NAME (the venv's name in messages) and FINGERPRINT_FILES
# (the files whose content decides what the venv holds), then calls the functions in order.

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
# Another venv's ROS bootstrap flag must not leak into this one (see docs: ros-wheels-bootstrapper).
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
PYTHON="${PYTHON:-python3}"

# Everything that decides what the venv holds; missing files count as empty.
fingerprint() {
  {
    local f
    for f in $FINGERPRINT_FILES; do
      printf '== %s\n' "$f"; cat "$f" 2>/dev/null || true
    done
    find interfaces -type f 2>/dev/null | LC_ALL=C sort | while read -r f; do
      printf '== %s\n' "$f"; cat "$f"
    done || true
  } | sha256sum | cut -d' ' -f1
}
ready() { [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ]; }

# Exit 0 at once when the stamp matches; else hold a lock (one set-up at a time) and return.
exit_if_ready() {
  if ready; then echo "environment ready: $NAME"; exit 0; fi
  mkdir -p build
  exec 9>"build/.setup_$NAME.lock"
  flock 9
  if ready; then echo "environment ready: $NAME"; exit 0; fi
  T0=$SECONDS
}

STEP=""
STEP_T=$SECONDS
step() {
  [ -n "$STEP" ] && printf '[setup %s] %-46s done in %3ss\n' "$NAME" "$STEP" "$((SECONDS - STEP_T))"
  STEP="$1"
  STEP_T=$SECONDS
  [ -n "$STEP" ] && printf '[setup %s] %s ...\n' "$NAME" "$STEP"
  return 0
}
die() { echo "setup ($NAME): $*" >&2; exit 1; }
# pip -q, but with its exit status kept; drops a harmless warning the ROS wheels trigger.
pip_q() {
  local out
  if ! out=$("$PY" -m pip -q "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    return 1
  fi
  printf '%s\n' "$out" | grep -v -e '^$' -e 'is ignored: it is neither a file nor a directory' || true
}

# cmake, g++, make and python3-venv, with apt-get when something is missing and we are root.
ensure_system_tools() {
  local need_apt=()
  command -v cmake >/dev/null || need_apt+=(cmake)
  command -v g++ >/dev/null || need_apt+=(g++)
  command -v make >/dev/null || need_apt+=(make)
  if [ ! -x "$PY" ] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    need_apt+=(python3-venv)
  fi
  [ ${#need_apt[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing: ${need_apt[*]} (install them, e.g. sudo apt-get install -y ${need_apt[*]})"
  fi
  step "apt-get install ${need_apt[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
}

# True when $PYTHON sees a ROS 2 installation's rclpy (a sourced /opt/ros/<distro>/setup.bash).
ros_sourced() { "$PYTHON" -c 'import rclpy' 2>/dev/null; }

# A venv at $VENV from $PYTHON. With a sourced ROS 2 installation (Humble: Python 3.10, Jazzy:
# 3.12, Kilted) it sees that installation's packages (--system-site-packages) and any Python
# 3.10-3.12 will do; without one it must be 3.11, as the ROS 2 wheels on PyPI are cp311 only.
ensure_venv() {
  if [ -x "$PY" ] && "$PY" -m pip --version >/dev/null 2>&1; then return 0; fi
  local options=()
  if ros_sourced; then
    "$PYTHON" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' \
      || die "$PYTHON is $("$PYTHON" --version 2>&1); this package supports Python 3.10-3.12"
    options=(--system-site-packages)
  else
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
      || die "$PYTHON is $("$PYTHON" --version 2>&1) and no ROS 2 is sourced; the ROS 2 wheels need Python 3.11 (set PYTHON=..., or source /opt/ros/<distro>/setup.bash first)"
  fi
  step "create $NAME ($("$PYTHON" --version 2>&1)${options:+, over the sourced ROS 2})"
  rm -rf "$VENV"
  "$PYTHON" -m venv "${options[@]}" "$VENV" || { rm -rf "$VENV"; die "python3 -m venv failed"; }
}

# The interface packages of interfaces/ (on no registry) built into the venv: vision_msgs unless
# an installed one with every message used imports (a sourced ROS provides it; a venv holding
# an older subset gets the current one), jetson_seg_msgs always (it is ours: a
# changed definition must be rebuilt; the stamp covers interfaces/).
build_interfaces() {
  "$PY" -c "from vision_msgs.msg import Detection3DArray" 2>/dev/null \
    || build_interface vision_msgs "from vision_msgs.msg import Detection2DArray, Detection3DArray"
  build_interface jetson_seg_msgs "from jetson_seg_msgs.msg import Track, TrackArray"
}

# build_interface NAME CHECK: cmake-build interfaces/NAME into the venv, then run CHECK (Python).
build_interface() {
  local name=$1 check=$2 py_include np_include build log
  step "build interfaces/$name into $NAME (cmake, -j2)"
  py_include=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  np_include=$("$PY" -c "import numpy; print(numpy.get_include())")
  # The message wheels' exported CMake files name the include dirs of the machine that built them
  # (/opt/python/cp311-cp311/...): point them at this venv's Python and numpy headers.
  grep -rlZ --include='*.cmake' '/opt/python/cp3' "$VENV/share" 2>/dev/null \
    | xargs -0 -r sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_?core/include#$np_include#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$py_include#g" || true
  build=$(mktemp -d -t "${name}_build.XXXXXX")
  log="$build.log"
  (
    # the venv's ROS wheels, or a sourced installation's ament and rosidl
    export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" \
      AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" PATH="$VENV/bin:$PATH"
    cmake -S "interfaces/$name" -B "$build" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF
    cmake --build "$build" -j2
    cmake --install "$build"
  ) > "$log" 2>&1 || { tail -40 "$log" >&2; die "$name build failed (full log: $log)"; }
  rm -rf "$build" "$log"
  "$PY" -c "$check" || die "$name was built but does not import"
}

# Write the stamp: the next run finds the venv ready.
finish() {
  step ""
  fingerprint > "$STAMP"
  echo "environment ready: $NAME (set up in $((SECONDS - T0)) s)"
}
