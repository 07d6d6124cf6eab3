#!/usr/bin/env bash
# README command 1: install hivenet into .venv and run the local testnet demo
# (3 peers on embedded defaults). Extra arguments go to `hivenet testnet up`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
exec .venv/bin/hivenet testnet up --peers 3 --run-dir runs/demo "$@"
