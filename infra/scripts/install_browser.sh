#!/usr/bin/env bash
# Headless Chromium and its driver for the end-to-end browser tests, from Debian's packages
# (Playwright's own browser download cannot work on machines without internet access).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
