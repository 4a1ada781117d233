#!/usr/bin/env bash
# Set up everything Eindr needs on a bare Debian/Ubuntu machine with Python 3.11+:
# a virtualenv with every component installed, plus the system packages the stack and
# tests use (redis-server, espeak-ng, ffmpeg, docker-compose for validating the compose file).
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

"$PYTHON" - <<'PY' || { echo "Eindr needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)"; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# System packages. Only what is missing; only where we may install (root or passwordless sudo).
need=()
command -v redis-server >/dev/null 2>&1 || [ -n "${EINDR_REDIS_URL:-}" ] || need+=(redis-server)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
# Deploy tests: promtool checks alert rules, bwrap runs each component like its pod.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
    echo "==> installing system packages: ${need[*]}"
    if ! ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null); then
      echo "Could not install ${need[*]} automatically. Install them yourself, e.g.:"
      echo "  sudo apt-get install ${need[*]}"
      echo "(or point EINDR_REDIS_URL at a running Redis)"
      exit 1
    fi
  else
    echo "Missing: ${need[*]}. Install them with your package manager (macOS: brew install redis espeak-ng ffmpeg docker-compose)."
    exit 1
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/pip"

# Re-install only when a component's declared dependencies change.
components=(libs/common gateway services/* inference/*)
stamp_src=$(cat scripts/bootstrap.sh $(for c in "${components[@]}"; do [ -f "$c/pyproject.toml" ] && echo "$c/pyproject.toml"; done) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.eindr-stamp" 2>/dev/null)" != "$stamp_src" ]; then
  echo "==> installing Python packages into $VENV (log: .local/pip.log)"
  mkdir -p .local
  pip_quiet() { "$PIP" install -q "$@" >>.local/pip.log 2>&1 || { tail -n 40 .local/pip.log; exit 1; }; }
  pip_quiet --upgrade pip
  # The CPU build of PyTorch (the inference servers need it); pinned so pip never
  # reaches for a multi-GB CUDA build on its own.
  pip_quiet "torch==2.13.0"
  args=(-e "libs/common[testing]")
  for c in gateway services/* inference/*; do
    # A component's "testing" (or "test") extra holds what its tests need beyond its runtime.
    if [ -f "$c/pyproject.toml" ]; then
      extra=$(grep -oE '^(testing|test) *=' "$c/pyproject.toml" | head -n1 | tr -d ' =' || true)
      if [ -n "$extra" ]; then args+=(-e "$c[$extra]"); else args+=(-e "$c"); fi
    fi
  done
  pip_quiet "${args[@]}" -r requirements-dev.txt
  echo "$stamp_src" > "$VENV/.eindr-stamp"
fi
# The Firebase Auth Emulator (firebase-tools, Node >= 20): real emulator tokens locally.
if [ ! -x tools/firebase-emulator/node_modules/.bin/firebase ] || [ tools/firebase-emulator/package-lock.json -nt tools/firebase-emulator/node_modules/.package-lock.json ]; then
  echo "==> installing the Firebase Auth Emulator (npm ci)"
  (cd tools/firebase-emulator && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
command -v kustomize >/dev/null 2>&1 || command -v kubectl >/dev/null 2>&1 \
  || echo "!! tests/deploy need kustomize >= 4 or kubectl >= 1.21 (kubectl kustomize); install one of them"
echo "==> environment ready ($VENV)"
