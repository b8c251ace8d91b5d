#!/usr/bin/env bash
# Installs everything Delineate, its demo and its tests need on Debian/Ubuntu, then builds.
# Idempotent and quick when nothing is missing; `npm test` runs it first (pretest).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: Node.js 20 or newer (with npm) is needed: https://nodejs.org/en/download" >&2
  exit 1
fi

# Debian packages: a real Orthanc with DICOMweb and GDCM, the independent DICOM tools the tests check with
# (dciodvfy, pydicom, dcm2niix, PixelMed's SR validator, plastimatch for RTSTRUCT rasterisation), and PyTorch
# (with scipy) for the training recipes' test.
PKGS="postgresql orthanc orthanc-dicomweb orthanc-gdcm dcmtk dicom3tools dcm2niix libgdcm-tools python3-pydicom python3-numpy python3-torch python3-scipy python3-pil nginx openssl pixelmed-apps plastimatch chromium python3-hl7"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages:$missing"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# The GPU code path without a GPU (test/integration/webgpu.test.ts): onnxruntime-node's WebGPU provider (Dawn over
# Vulkan) on lavapipe, Mesa's software Vulkan device. Dawn needs shaderUniformBufferArrayDynamicIndexing, which
# lavapipe has from Mesa 23; Debian 12 ships 22.3 ("No supported adapters"), so there it comes from bookworm-backports.
mesa_major() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | cut -d. -f1; }
if [ "$(mesa_major)" = "" ] || [ "$(mesa_major)" -lt 23 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  release=""
  if grep -q 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
    release="-t bookworm-backports"
    list=/etc/apt/sources.list.d/bookworm-backports.list
    grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ ||
      echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee "$list" >/dev/null
  fi
  echo "setup: installing Mesa's software Vulkan device (lavapipe) for the WebGPU tests"
  $SUDO apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $release mesa-vulkan-drivers libvulkan1
fi

# npm packages. onnxruntime-node's install step would download CUDA libraries from outside the npm registry;
# skip it here. With network access, `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` adds CUDA.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL:-skip} npm ci --no-audit --no-fund
fi

npm run build --silent
