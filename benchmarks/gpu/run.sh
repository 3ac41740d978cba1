#!/usr/bin/env bash
# The whole GPU check in one command (see run.py's docstring and README.md beside this file).
# On the device machine: results under $OUT. Here: add --cpu-dry-run (and --out DIR).
set -uo pipefail
cd "$(dirname "$0")/../.."
exec python3 benchmarks/gpu/run.py "$@"
