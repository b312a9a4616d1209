#!/usr/bin/env bash
# Install everything and run the test suite (what CI runs).
#
# It installs, and says so as it goes:
#   .venv        torch 2.13 (CPU), kernel-builder (editable) and the test dependencies (setup-env.sh)
#   .venv-cu130  torch 2.11 for CUDA 13.0, when a CUDA 13.0 toolkit is present
#   nix-bin, openssh-server/-client, python3-dev, python3-venv
#                Debian's packages for the Nix tests (Nix, sshd for the remote builder, what the
#                test-only nixpkgs stand-in takes from the host), with apt-get, when running as root
#
# Besides .venv (torch 2.13 CPU), a second environment .venv-cu130 holds the CUDA 13.0 build
# of torch 2.11 from PyPI, without its runtime libraries: enough to compile and link CUDA
# variants on a machine without a GPU. It is made only when a CUDA 13.0 toolkit is present
# (KB_NO_CUDA_BUILDS=1 skips it). GPU tests (marker `gpu`) are skipped without a GPU.
# As root with apt-get, the Nix tests' Debian packages are installed (KB_NO_NIX=1 skips them).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "test.sh: $*" >&2; }
say "setting up .venv (torch 2.13 CPU, kernel-builder, test dependencies)"
scripts/setup-env.sh
export PATH="$PWD/.venv/bin:$PATH"

if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda-13.0/bin/nvcc ]; then
    export CUDA_HOME=/usr/local/cuda-13.0
fi
if [ -z "${KB_NO_CUDA_BUILDS:-}" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then
    [ -x .venv-cu130/bin/python ] || python -m venv .venv-cu130
    if ! .venv-cu130/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)" 2>/dev/null; then
        say "installing torch 2.11 for CUDA 13.0 (without its runtime libraries) into .venv-cu130, for CUDA builds without a GPU"
        .venv-cu130/bin/python -m pip install -q --no-deps torch==2.11.0
    fi
    export KB_TEST_CUDA_PYTHON="$PWD/.venv-cu130/bin/python"
    # cuobjdump (to list the architectures in a binary): a 300 kB wheel where the toolkit lacks it.
    if [ ! -x "$CUDA_HOME/bin/cuobjdump" ]; then
        say "installing nvidia-cuda-cuobjdump into .venv-cu130 (the toolkit at $CUDA_HOME has no cuobjdump)"
        .venv-cu130/bin/python -m pip install -q --no-deps nvidia-cuda-cuobjdump
        export KB_CUOBJDUMP="$(.venv-cu130/bin/python -c 'import importlib.util, pathlib; s = importlib.util.find_spec("nvidia"); print(next(pathlib.Path(p) / "cu13" / "bin" / "cuobjdump" for p in s.submodule_search_locations))')"
    fi
fi

# Real Nix for the Nix tests (tests/test_nix_*.py, docs/nix.md): Debian's nix-bin; sshd for the
# remote-builder test; the Python headers and venv module that the test-only nixpkgs stand-in
# (tests/nix/host-nixpkgs) takes from the host. Installed when we may (root with apt-get).
nix_packages=()
command -v nix >/dev/null || nix_packages+=(nix-bin)
[ -x /usr/sbin/sshd ] || nix_packages+=(openssh-server)
command -v ssh >/dev/null || nix_packages+=(openssh-client)
[ -f /usr/include/python3.11/Python.h ] || nix_packages+=(python3-dev)
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || nix_packages+=(python3-venv)
if [ -z "${KB_NO_NIX:-}" ] && [ "${#nix_packages[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's ${nix_packages[*]} system-wide (apt-get) for the Nix tests; KB_NO_NIX=1 skips it"
    # Where we may install them, a failure is an error: the Nix tests must run, not be skipped.
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${nix_packages[@]}"; } >/dev/null 2>&1 \
        || { echo "error: could not install ${nix_packages[*]} for the Nix tests (KB_NO_NIX=1 skips them)" >&2; exit 1; }
fi

python -m pytest "$@"
