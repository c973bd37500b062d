#!/usr/bin/env bash
# System tools the test suite uses, from Debian's packages (idempotent):
#  - chromium + chromium-driver: the end-to-end browser tests (Playwright drives /usr/bin/chromium;
#    its own browser download cannot work on machines without internet access);
#  - prometheus (for promtool): checks the alert rules and scrape config in tests/unit/infra;
#  - poppler-utils (pdftoppm, pdftotext): the hand-over PDF is rendered to PNG and read back.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
