#!/usr/bin/env bash
# Install the real services the test suite exercises, when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f contracts/package.json ]; then
    (cd contracts && npm ci --no-audit --no-fund --loglevel=error)
fi
