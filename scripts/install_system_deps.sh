#!/usr/bin/env bash
# System packages the sandbox (eval/sandbox) uses to run every benchmark language. Idempotent: installs only what is
# missing, and does nothing (successfully) where apt-get is unavailable or we are not root, after saying so.
#   golang-go            Go toolchain (MultiPL-E Go runs `go test`)
#   node-typescript      tsc (MultiPL-E TypeScript is compiled with `tsc --target esnext`, then run by node)
#   libjavatuples-java   org.javatuples (MultiPL-E Java imports it; the jar lands in /usr/share/java)
# Already expected on the machine: python3, g++, javac/java, node, rustc, bash. No bubblewrap needed: the sandbox
# builds its own namespaces.
set -euo pipefail

want=()
command -v go >/dev/null 2>&1 || want+=(golang-go)
command -v tsc >/dev/null 2>&1 || want+=(node-typescript)
[ -f /usr/share/java/javatuples.jar ] || want+=(libjavatuples-java)

if [ ${#want[@]} -eq 0 ]; then
    echo "install_system_deps: nothing to do"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_deps: apt-get not found; install by hand: ${want[*]}" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install_system_deps: not root; install by hand: ${want[*]}" >&2
        exit 0
    fi
fi
# node-typescript depends on a nodejs package; where node came from elsewhere (nodesource), apt still resolves it.
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${want[@]}"
echo "install_system_deps: installed ${want[*]}"
