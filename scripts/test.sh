#!/usr/bin/env bash
# README command 2: install everything the tests need and run the whole suite.
# Real services come from their registries: anvil/forge/solc from npm
# (contracts/package.json), mosquitto from Debian. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh test
scripts/test-services.sh
exec .venv/bin/python -m pytest "$@"
