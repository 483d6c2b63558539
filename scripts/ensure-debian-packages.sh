#!/usr/bin/env bash
# Installs the Debian packages a test needs when they are missing (CI runs as root on a fresh
# Debian machine with Debian's archive reachable): scripts/ensure-debian-packages.sh PKG...
set -euo pipefail
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
((${#missing[@]} == 0)) && exit 0
[[ $(id -u) == 0 ]] || { echo "ensure-debian-packages: ${missing[*]} missing, and installing needs root" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
echo "ensure-debian-packages: installed ${missing[*]}"
