#!/usr/bin/env bash
# Create or update the project venv (.venv): pinned Python packages (requirements.txt), the
# interface packages of interfaces/ (vision_msgs when no installed package provides it,
# jetson_seg_msgs), and jetson_seg itself
# (editable). Idempotent: on a ready venv (stamp matches) it exits in about a second.
# Works from any cwd, without a terminal (CI=true, no stdin). Root on a fresh Debian 12 machine:
# missing cmake/g++/make/python3-venv are installed with apt-get.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
ROOT="$PWD"
NAME=.venv
VENV="$ROOT/$NAME"
PY="$VENV/bin/python"
STAMP="$VENV/.jetson_seg_setup"
# Everything that decides what the venv holds (interfaces/ too, see env_lib.sh).
FINGERPRINT_FILES="requirements.txt requirements/*.txt setup.py setup.cfg package.xml
  scripts/setup_env.sh scripts/env_lib.sh"
source scripts/env_lib.sh  # the steps shared with setup_jazzy_env.sh

exit_if_ready
ensure_system_tools
ensure_venv

if ros_sourced; then
  # A sourced ROS 2 installation provides rclpy and the messages: every group but ros-kilted.
  step "pip install the requirements/ groups (ROS 2 from the sourced installation)"
  groups=$(grep '^-r requirements/' requirements.txt | grep -v ros-kilted | sed 's/^-r //')
  # shellcheck disable=SC2086
  pip_q install $(printf -- '-r %s ' $groups) || die "pip install failed (output above)"
else
  step "pip install -r requirements.txt"
  pip_q install -r requirements.txt || die "pip install -r requirements.txt failed (output above)"
fi
"$PY" -c "import rclpy, std_msgs.msg, geometry_msgs.msg" \
  || die "rclpy does not import in .venv after installing the requirements"

# --- interfaces/ (on no registry): vision_msgs, jetson_seg_msgs, built into the venv ---------------
build_interfaces

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

finish
