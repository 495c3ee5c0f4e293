#!/usr/bin/env bash
# Install the Debian packages pdfgen-pipeline needs, only those that are missing.
# Used by the Makefile (make demo / make test) and by the Dockerfile, so both stay in step.
#   --with-test : also PostgreSQL server binaries and Chromium (tests, not the runtime image)
#   --clean     : afterwards remove apt's package lists and downloaded archives (container images)
set -euo pipefail

RUNTIME_PACKAGES=(
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0   # WeasyPrint text layout
  ghostscript                                            # EPS -> PDF (ps2pdf), always -dSAFER
  poppler-utils                                          # pdftocairo (PDF -> SVG), pdftoppm
  fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 # fonts covering French typography
  fontconfig shared-mime-info
)
TEST_PACKAGES=(
  postgresql                                             # initdb/pg_ctl for Postgres-backed tests
  chromium chromium-driver                               # headless browser checks
)

with_test=0
clean=0
for arg in "$@"; do
  case "$arg" in
    --with-test) with_test=1 ;;
    --clean) clean=1 ;;
    *) echo "usage: $0 [--with-test] [--clean]" >&2; exit 2 ;;
  esac
done

packages=("${RUNTIME_PACKAGES[@]}")
if [[ $with_test -eq 1 ]]; then
  packages+=("${TEST_PACKAGES[@]}")
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system packages: all present"
  exit 0
fi

echo "system packages: installing ${missing[*]}"
SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: missing system packages (${missing[*]}) and not root; install them first" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [[ $clean -eq 1 ]]; then
  $SUDO apt-get clean
  $SUDO rm -rf /var/lib/apt/lists/*
fi
