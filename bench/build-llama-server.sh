#!/usr/bin/env bash
# Builds the llama-server that `npm run bench -- --vs-cmd …` compares Sputnik with, so that the
# comparison is of servers, not of builds: the same llama.cpp source as node-llama-cpp (the git
# bundle its package ships), and at run time the very CPU kernels Sputnik runs (node-llama-cpp's
# prebuilt libggml-cpu-<variant>.so files, copied next to the binary; llama.cpp's backend loader
# then picks the best variant for the CPU exactly as node-llama-cpp's does).
#
# Why not a plain build: a -DGGML_NATIVE=ON binary is tied to the CPU it was built on (on a VM it
# can stop with "Illegal instruction" after a migration), and a build with hand-picked flags
# measured 24.3 tok/s for one stream where node-llama-cpp's prebuilt did 39.5.
#
#   bench/build-llama-server.sh [out-dir]      (default: .cache/llama-server; needs cmake, ninja, g++)
#   npm run bench -- --vs-url http://127.0.0.1:8081 \
#     --vs-cmd ".cache/llama-server/bin/llama-server -m .cache/models/bench.gguf --port 8081 --host 127.0.0.1 -np 8 -t 2 -c 32768"
#
# About 8 minutes on 2 cores from scratch (only llama-server and its libraries are compiled; no CPU backend).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/.cache/llama-server}"
bundle="$root/node_modules/node-llama-cpp/llama/gitRelease.bundle"
prebuilt="$root/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
[ -f "$bundle" ] || { echo "no $bundle: run npm ci first" >&2; exit 1; }
[ -d "$prebuilt" ] || { echo "no $prebuilt: this script is for x64 Linux" >&2; exit 1; }
mkdir -p "$out"
[ -d "$out/src/.git" ] || git clone --quiet "$bundle" "$out/src"
# GGML_BACKEND_DL with no CPU backend of its own: the binary loads libggml-cpu-*.so at run time.
cmake -S "$out/src" -B "$out/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGGML_BACKEND_DL=ON -DGGML_CPU=OFF -DGGML_NATIVE=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$out/build" --target llama-server -j "$(nproc)"
cp "$prebuilt"/libggml-cpu-*.so "$out/build/bin/"
ln -sfn "$out/build/bin" "$out/bin"
echo "built $out/bin/llama-server (CPU kernels: node-llama-cpp's prebuilt $(ls "$prebuilt" | grep -c '^libggml-cpu-') variants)"
