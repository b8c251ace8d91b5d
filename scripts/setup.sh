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

# npm packages. onnxruntime-node's install step would download CUDA libraries from outside the npm registry;
# skip it here. With network access, `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` adds CUDA.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL:-skip} npm ci --no-audit --no-fund
fi

npm run build --silent
