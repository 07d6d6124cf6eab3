#!/usr/bin/env bash
# Install the real services the test suite exercises, when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f contracts/package.json ]; then
    (cd contracts && npm ci --no-audit --no-fund --loglevel=error)
fi
# mosquitto (Debian): the real MQTT broker of the telemetry tests (killed and restarted mid-run).
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq mosquitto >/dev/null
fi
# iptables (Debian): the NAT routers of the namespaced testnet (node/testnet/netns.py).
if ! command -v iptables >/dev/null && [ ! -x /usr/sbin/iptables ]; then
    sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq iptables >/dev/null
fi
# chromium (Debian): the browser of the run-report test (tests/scenarios: headless screenshot of report.html).
if ! command -v chromium >/dev/null; then
    sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi
