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
  gdb              # scripts/with-deadline.sh prints a hung test run's stacks
  python3-pip
)
# The versions the suite is tested with (a new major version of h2 or a
# change in grpcio's behaviour must not break CI without a change here).
pip_packages=("grpcio>=1.85,<1.86" "grpcio-tools>=1.85,<1.86" "grpcio-health-checking>=1.85,<1.86"
              "h2>=4.4,<5" "pytest>=9,<10")

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Installed already, in the versions above? (No pip run then: offline and fast.)
pinned_present() {
  python3 - "${pip_packages[@]}" <<'PY' 2>/dev/null
import importlib.metadata, re, sys
def parse(v): return tuple(int(x) for x in re.findall(r"\d+", v)[:3])
for spec in sys.argv[1:]:
    name, low, high = re.fullmatch(r"([\w-]+)>=([\d.]+),<([\d.]+)", spec).groups()
    have = parse(importlib.metadata.version(name))
    if not parse(low) <= have < parse(high):
        sys.exit(1)
import grpc, grpc_tools, grpc_health, h2, pytest
PY
}
if ! pinned_present; then
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
