#!/bin/sh
# Entry point behind `npm start` and `npm test`: makes sure this machine has
# Node 24 (the Lambda nodejs24.x runtime) and the project's npm dependencies,
# then runs the given command with Node 24 first on PATH. Nothing here needs
# to be installed by hand beforehand but npm itself.
set -eu

ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
NODE_VERSION=$(cat "$ROOT/.node-version")
CACHE_DIR=${FLOTILLA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla}
export FLOTILLA_CACHE_DIR="$CACHE_DIR"

say() { printf '[flotilla] %s\n' "$*" >&2; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  required_major=${NODE_VERSION%%.*}
  if command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge "$required_major" ]; then
    return 0
  fi
  node_dir="$CACHE_DIR/node-$NODE_VERSION"
  if [ ! -x "$node_dir/bin/node" ]; then
    case "$(uname -m)" in
      x86_64 | amd64) arch=x64 ;;
      aarch64 | arm64) arch=arm64 ;;
      *) say "unsupported CPU $(uname -m): install Node $NODE_VERSION yourself"; exit 1 ;;
    esac
    say "installing Node $NODE_VERSION from the npm registry (node-linux-$arch) into $node_dir"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    npm pack --silent --pack-destination "$tmp" "node-linux-$arch@$NODE_VERSION" >/dev/null
    tar -xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$tmp"
    mkdir -p "$CACHE_DIR"
    rm -rf "$node_dir.partial"
    mv "$tmp/package" "$node_dir.partial"
    mv "$node_dir.partial" "$node_dir"
    rm -rf "$tmp"
    trap - EXIT
  fi
  PATH="$node_dir/bin:$PATH"
  export PATH
}

deps_hash() {
  (cd "$ROOT" && cat package.json package-lock.json */package.json 2>/dev/null) |
    node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>process.stdout.write(require("node:crypto").createHash("sha256").update(d).digest("hex")))'
}

ensure_deps() {
  # playwright-core (the browser tests' driver) downloads no browser on install; should a
  # playwright package ever come in that would, it must not: the tests drive the system
  # Chromium (test/bed/src/browser.ts) and nothing but the npm registry is reachable.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD
  stamp="$ROOT/node_modules/.flotilla-deps-hash"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(deps_hash)" ]; then
    return 0
  fi
  # `npm install` rather than `npm ci`: the lock file holds only the platform
  # packages this registry serves, which `npm ci` rejects as out of sync.
  say "installing npm dependencies (npm install, versions from package-lock.json)"
  (cd "$ROOT" && npm install --no-save --no-audit --no-fund --loglevel=warn)
  deps_hash >"$stamp"
}

# The test bed needs a JDK with Maven (DynamoDB Local, ElasticMQ), Go (etcd,
# Kubernetes and kwok are built from the Go module proxy), git and openssl. On a
# Debian-like machine without them they come from apt; elsewhere we say what is missing.
ensure_tools() {
  missing=""
  for tool in java mvn go git openssl; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
  done
  [ -z "$missing" ] && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing missing tools with apt-get:$missing"
    apt-get update -qq
    pkgs=""
    for tool in $missing; do
      case "$tool" in
        java) pkgs="$pkgs openjdk-17-jdk-headless" ;;
        mvn) pkgs="$pkgs maven" ;;
        go) pkgs="$pkgs golang-go" ;;
        *) pkgs="$pkgs $tool" ;;
      esac
    done
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs
  else
    say "missing tools:$missing (install them, then run this again)"
    exit 1
  fi
}

ensure_node
ensure_deps
ensure_tools
PATH="$ROOT/node_modules/.bin:$PATH"
export PATH
cd "$ROOT"
exec "$@"
