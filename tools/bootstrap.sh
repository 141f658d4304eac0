#!/usr/bin/env bash
# Install everything this project needs into the active Python environment (tox calls this).
#
#   bash tools/bootstrap.sh            # Python packages only
#   bash tools/bootstrap.sh --system   # also the Debian packages napari needs under Xvfb (root)
#
# Order matters: mmcv 2.1.0 exists only as an sdist and compiles its ops against the torch
# already installed (--no-build-isolation, setuptools<70); torch 2.13 itself requires
# setuptools>=77, which the last step restores.  pip caches the built mmcv wheel, so only
# the first run on a machine pays the ~50 min compile.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
constraints="$here/requirements/constraints.txt"
pip=(python -m pip --disable-pip-version-check)

log() { printf '[bootstrap %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [[ "${1:-}" == "--system" ]]; then
  debs=(xvfb xauth libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
        libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-cursor0 libgl1 libegl1
        libgl1-mesa-dri libfontconfig1 libdbus-1-3)
  missing=()
  for deb in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" || missing+=("$deb")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
      echo "bootstrap: missing Debian packages for napari under Xvfb: ${missing[*]}" >&2
      echo "bootstrap: install them with: sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if python - <<'PY' 2>/dev/null
import importlib.metadata as md, sys
need = {"torch": "2.13.0", "torchvision": "0.28.0", "mmcv": "2.1.0"}
sys.exit(0 if all(md.version(k) == v for k, v in need.items()) else 1)
PY
then
  log "torch 2.13.0, torchvision 0.28.0 and mmcv 2.1.0 already installed"
else
  log "torch (standard build) + torchvision"
  "${pip[@]}" install -q -c "$constraints" "torch===2.13.0" "torchvision==0.28.0"
  log "mmcv 2.1.0 with ops (compiled once per machine, then taken from pip's wheel cache)"
  "${pip[@]}" install -q "setuptools<70" wheel ninja
  MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "${pip[@]}" install -q --no-build-isolation -c "$constraints" "mmcv==2.1.0"
fi

log "project packages and test tools"
"${pip[@]}" install -q -c "$constraints" \
  -e "$here/nc-synthmodel[chem]" \
  -e "$here/napari-nanocrystal[all]" \
  "setuptools>=77" pytest pytest-qt pytest-xvfb "ruff==0.17.*"
# mmengine and mmcv require opencv-python, the GUI build: its bundled Qt plugins take over
# Qt's plugin path when cv2 is imported and napari's PyQt5 then aborts.  Keep one cv2, the
# headless build of the same version.
if python -m pip show -q opencv-python >/dev/null 2>&1; then
  cv2_version=$(python -c "import importlib.metadata as m; print(m.version('opencv-python'))")
  log "replacing opencv-python $cv2_version by opencv-python-headless (napari's Qt needs its own plugins)"
  "${pip[@]}" uninstall -q -y opencv-python opencv-python-headless
  "${pip[@]}" install -q --no-deps "opencv-python-headless==$cv2_version"
fi
python -c "import mmcv.ops, torch, torchvision; print('[bootstrap] ok: torch', torch.__version__, 'mmcv ops loaded')"
