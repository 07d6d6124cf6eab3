#!/usr/bin/env bash
# README command 1: install hivenet into .venv and run the local testnet demo on embedded
# defaults (in-process EVM chain and MQTT broker): 3 trainers, 2 data contributors, 1 validator
# that recomputes a quarter of the receipts. Extra arguments go to `hivenet testnet up`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
exec .venv/bin/hivenet testnet up --peers 3 --epochs 40 --receipt-p 0.25 --run-dir runs/demo "$@"
