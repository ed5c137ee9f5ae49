#!/usr/bin/env bash
# Installs everything sfm needs on Debian 12 / Ubuntu 24.04: the C++ toolchain and libraries from
# the distribution, Debian's PyTorch for the reference model (with OpenBLAS, so the CPU baseline
# and the reference fixtures run on an optimised BLAS rather than netlib's), and the PyPI tools (Zarr/MDIO peers,
# an S3-API server) in the project's venv (.venv). Idempotent: re-running only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  build-essential cmake pkg-config git
  libeigen3-dev catch2 nlohmann-json3-dev
  libblosc-dev libzstd-dev zlib1g-dev liblz4-dev libcurl4-openssl-dev libssl-dev libpng-dev
  libdnnl-dev
  openmpi-bin libopenmpi-dev
  python3-torch python3-numpy python3-venv libopenblas0-pthread
  nginx-light
  clang libclang-rt-dev libomp-dev
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The venv uses the first python3 on PATH that is not Debian's (pyenv's where present), so that
# numpy 2 / zarr 3 never meet Debian's torch 1.13 + numpy 1.24 (they exchange data through files).
if [ "${SFM_SKIP_VENV:-0}" != 1 ]; then
  venv_python=python3
  if [ ! -x .venv/bin/python ]; then
    "$venv_python" -m venv .venv
  fi
  # (Re)install when the pins changed since the last install, or a package does not import.
  if ! cmp -s scripts/requirements-venv.txt .venv/sfm-requirements.txt ||
     ! .venv/bin/python -c 'import zarr, numcodecs, tensorstore, mdio, moto, zarrs, tensorboard, PIL, xarray' 2>/dev/null; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r scripts/requirements-venv.txt
    cp scripts/requirements-venv.txt .venv/sfm-requirements.txt
  fi
fi
echo "sfm dependencies: ok"
