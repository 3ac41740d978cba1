#!/usr/bin/env bash
# Fill the git-ignored wheel folder (.whl by default) with the numpy 2.4.x wheel that the GPU
# machine needs: it has numpy 2.5, under which numba-cuda 0.30 fails to import (np.row_stack
# was removed), and it cannot download anything. Run this here, before the device call, and
# name the folder in the call's carry list (carry: [".whl"]). Python 3.12, x86-64 Linux: the
# device image's interpreter (see /work/.library/device/KINDS.md).
#
#   bash benchmarks/gpu/fetch_wheels.sh [FOLDER] [PYTHON_VERSION]
set -euo pipefail
cd "$(dirname "$0")/../.."
folder="${1:-.whl}"
pyver="${2:-3.12}"
mkdir -p "$folder"
rm -f "$folder"/numpy-*.whl            # one numpy wheel only: two stop the install
python3 -m pip download 'numpy==2.4.*' --no-deps --only-binary :all: \
    --python-version "$pyver" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$folder"
ls -l "$folder"
