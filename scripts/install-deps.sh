#!/usr/bin/env bash
# Installs what the build and the tests need and is missing, on Debian 12 with
# the Swift toolchain already on PATH. Idempotent: installs nothing twice.
set -euo pipefail

apt_packages=(
  pkg-config libnghttp2-dev libssl-dev libsqlite3-dev libjemalloc-dev openssl  # build: the C libraries
  nghttp2-client   # h2load, for the benchmark
  nghttp2-server   # nghttpd, the HTTP/2 ceiling in the benchmark
  poppler-utils    # pdftotext/pdftoppm, to check invoice PDFs
  strace           # a test checks how the secret files are created
  python3-pip
)
pip_packages=(grpcio grpcio-tools grpcio-health-checking h2 pytest)

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c "import grpc, grpc_tools, grpc_health, h2, pytest" 2>/dev/null; then
  echo "installing Python packages: ${pip_packages[*]}"
  # Debian 12's own python3 is "externally managed" (PEP 668): pip refuses
  # to install into it unless told to. These are test tools, kept to pip's
  # user-level site when not root; an interpreter of one's own (pyenv, a
  # venv) needs no flag.
  pip_flags=(-q --disable-pip-version-check)
  if python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")))'; then
    pip_flags+=(--break-system-packages)
    [ "$(id -u)" -eq 0 ] || pip_flags+=(--user)
  fi
  python3 -m pip install "${pip_flags[@]}" "${pip_packages[@]}" 2>&1 | { grep -v "Running pip as the 'root' user" || true; }
  python3 -c "import grpc, grpc_tools, grpc_health, h2, pytest" \
    || { echo "install-deps: the Python test packages did not install (see pip's output above)" >&2; exit 1; }
fi
