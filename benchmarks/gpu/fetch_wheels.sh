#!/usr/bin/env bash
# Fill the git-ignored wheel folder (.whl by default) with the wheels the GPU machine needs:
# numpy 2.4.x (the image has numpy 2.5, under which numba-cuda 0.30 fails to import:
# np.row_stack was removed) and snowballstemmer (a runtime dependency the image lacks). That
# machine cannot download anything: run this here, before the device call, and name the folder
# in the call's carry list (carry: [".whl"]). Python 3.12, x86-64 Linux: the device image's
# interpreter (see /work/.library/device/KINDS.md).
#
#   bash benchmarks/gpu/fetch_wheels.sh [FOLDER] [PYTHON_VERSION]
set -euo pipefail
cd "$(dirname "$0")/../.."
folder="${1:-.whl}"
pyver="${2:-3.12}"
mkdir -p "$folder"
rm -f "$folder"/numpy-*.whl "$folder"/snowballstemmer-*.whl   # one version of each only
python3 -m pip download 'numpy==2.4.*' --no-deps --only-binary :all: \
    --python-version "$pyver" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$folder"
# the one runtime dependency the image lacks (pure Python; imported by the stemming code)
python3 -m pip download 'snowballstemmer>=2.2' --no-deps --only-binary :all: -d "$folder"
ls -l "$folder"
