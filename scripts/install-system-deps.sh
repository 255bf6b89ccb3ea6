#!/usr/bin/env bash
# Debian packages the tests use: prometheus (promtool and a real server), wrk (benchmarks),
# buildah + debootstrap (the image build without a Docker engine), chromium (the browser test),
# graphviz (docs/infra.svg), jq (the docs' feedback examples), redis-server (the shared-state tests), Java 17 (Spark, for
# `ml-service predict --spark`).
# Installs only what is missing.
set -euo pipefail
packages=(prometheus wrk buildah debootstrap chromium graphviz jq redis-server openjdk-17-jre-headless)
commands=(prometheus wrk buildah debootstrap chromium dot jq redis-server java)
missing=()
for i in "${!packages[@]}"; do
  command -v "${commands[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
