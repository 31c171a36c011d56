#!/usr/bin/env bash
# Make sure Fashion-MNIST is present: Debian package when apt is usable as root, otherwise a
# download into the user cache when online, otherwise say what to do.
set -uo pipefail
ADVBENCH=${1:-advbench}
SYSTEM_DIR=/usr/share/datasets/fashion-mnist
have_data() {
  for d in "${ADVBENCH_DATA:-}/fashion-mnist" "${ADVBENCH_DATA:-}" "$SYSTEM_DIR" "${XDG_CACHE_HOME:-$HOME/.cache}/advbench/fashion-mnist"; do
    [ -n "$d" ] && ls "$d"/t10k-images-idx3-ubyte* >/dev/null 2>&1 && return 0
  done
  return 1
}
have_data && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian package dataset-fashion-mnist" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1
  have_data && exit 0
fi
echo "downloading Fashion-MNIST into the user cache" >&2
"$ADVBENCH" download fashion-mnist && have_data && exit 0
echo "Fashion-MNIST is missing. Install the Debian package dataset-fashion-mnist, or put the four IDX files in \$ADVBENCH_DATA/fashion-mnist, then re-run." >&2
exit 1
