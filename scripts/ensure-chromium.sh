#!/usr/bin/env bash
# The HTML leaderboard test renders the page in headless Chromium (Debian package `chromium`).
# Install it when apt is usable as root; otherwise the test says it is missing and skips.
set -uo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian package chromium (for the HTML leaderboard test)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1
fi
command -v chromium >/dev/null 2>&1 || echo "chromium is not installed; the HTML rendering test will skip" >&2
exit 0
