#!/usr/bin/env bash
# What can be checked of the GPU image's build on the GPU machine, which has CUDA 13 on Ubuntu 24.04 but no
# container tools and no network: Dockerfile.base's native-addon step run by hand.
#   1. nvcc where the CUDA images have it (/usr/local/cuda/bin, the PATH Dockerfile.base sets), cuBLAS beside it;
#   2. the addon configured and built with KNN_GPU=ON by each CMake given: the machine's, the one Dockerfile.base
#      pins (CMAKE_SOURCE=tarball) and an older distribution CMake (what CMAKE_SOURCE=apt would give);
#   3. each addon loads, has the GPU builder and sees the GPU;
#   4. the runtime packages Dockerfile.api would install for it (docker/runtime-files.sh --packages).
# Prints a table at the end. Needs, carried from a development machine (scripts/container-gpu-check.sh --prepare
# makes them): .gpu-pack (node), node_modules/node-addon-api, node_modules/node-api-headers and
# .tmp/gpu-container-check (CMake 4.4.3 from its Python wheel, Debian 12's CMake 3.25 with its libraries).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
kit=.tmp/gpu-container-check

if [ "${1:-}" = --prepare ]; then
  set -e
  bash scripts/gpu-pack.sh
  mkdir -p "$kit/lib"
  if [ ! -s "$kit/cmake-4.4.3.tar.xz" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && pip download -q --no-deps cmake==4.4.3 && python3 -m zipfile -e cmake-4.4.3-*.whl x)
    tar -C "$tmp/x/cmake/data" -cf - bin/cmake share/cmake-4.4 | xz -T2 -6 >"$kit/cmake-4.4.3.tar.xz"
    rm -rf "$tmp"
  fi
  (cd "$kit" && { ls cmake_3.25*.deb >/dev/null 2>&1 || apt-get download cmake cmake-data 2>/dev/null; })
  for l in libjsoncpp.so.25 librhash.so.0 libuv.so.1 libarchive.so.13; do
    cp -L "/usr/lib/x86_64-linux-gnu/$l" "$kit/lib/"
  done
  du -sh .gpu-pack "$kit"
  exit 0
fi

OUT=${OUT:-$PWD/.tmp/gpu-container-check/out}
mkdir -p "$OUT"
# shellcheck disable=SC1091
source .gpu-pack/env.sh
export PATH=/usr/local/cuda/bin:$PATH
rows=()
row() { rows+=("$(printf '%-34s %-5s %s' "$1" "$2" "$3")"); }

echo "=== machine"
grep PRETTY_NAME /etc/os-release
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if command -v nvcc >/dev/null && [ "$(command -v nvcc)" = /usr/local/cuda/bin/nvcc ]; then
  row "nvcc at /usr/local/cuda/bin" ok "$(nvcc --version | tail -1)"
else
  row "nvcc at /usr/local/cuda/bin" FAIL "found: $(command -v nvcc || echo none)"
fi
cublas=$(find -L /usr/local/cuda/lib64/ -maxdepth 1 -name "libcublas.so.*" 2>/dev/null | head -n 1)
row "cuBLAS beside nvcc" "$([ -n "$cublas" ] && echo ok || echo FAIL)" "${cublas:-none}"

# The CMakes to try: label and binary.
tools=()
tools+=("machine's cmake|$(command -v cmake)")
mkdir -p /tmp/gcc-cmake-4.4.3 /tmp/gcc-cmake-3.25
[ -x /tmp/gcc-cmake-4.4.3/bin/cmake ] || { xz -dc "$kit/cmake-4.4.3.tar.xz" | tar -C /tmp/gcc-cmake-4.4.3 -xf - && chmod +x /tmp/gcc-cmake-4.4.3/bin/cmake; }
tools+=("pinned cmake 4.4.3|/tmp/gcc-cmake-4.4.3/bin/cmake")
if [ ! -x /tmp/gcc-cmake-3.25/usr/bin/cmake ]; then
  for deb in "$kit"/cmake_3.25*.deb "$kit"/cmake-data_3.25*.deb; do dpkg -x "$deb" /tmp/gcc-cmake-3.25; done
fi
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec /tmp/gcc-cmake-3.25/usr/bin/cmake "$@"\n' "$PWD/$kit/lib" \
  >/tmp/gcc-cmake-3.25/cmake
chmod +x /tmp/gcc-cmake-3.25/cmake
tools+=("Debian 12 cmake 3.25|/tmp/gcc-cmake-3.25/cmake")

inc="$PWD/node_modules/node-api-headers/include;$PWD/node_modules/node-addon-api"
for t in "${tools[@]}"; do
  label=${t%%|*} cmake=${t#*|}
  slug=$(echo "$label" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9.\n' '-')
  dir=/tmp/gcc-build-$slug
  echo "=== $label: $("$cmake" --version 2>&1 | head -n 1)"
  rm -rf "$dir"
  if ! "$cmake" --version >/dev/null 2>&1; then
    row "$label" SKIP "does not run here: $("$cmake" --version 2>&1 | head -n 1)"
    continue
  fi
  t0=$SECONDS
  if "$cmake" -S src/native -B "$dir" -DKNN_GPU=ON -DKNN_CUDA_ARCHS=90 -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_JS_INC="$inc" >"$OUT/$slug.configure.log" 2>&1 &&
    "$cmake" --build "$dir" -j "$(nproc)" >"$OUT/$slug.build.log" 2>&1; then
    addon=$(find "$dir" -name knn_native.node | head -n 1)
    info=$(KNN_NATIVE_ADDON=$addon node -e "const a = require(process.env.KNN_NATIVE_ADDON);
      const g = a.gpuInfo(0); console.log('withGpu=' + a.withGpu + ' devices=' + g.deviceCount + ' ' + g.name)" 2>&1)
    row "$label: KNN_GPU=ON build" ok "$((SECONDS - t0)) s; $(grep -ho 'GPU builder: .*' "$OUT/$slug.configure.log")"
    case "$info" in
      withGpu=true*) row "$label: addon loads" ok "$info" ;;
      *) row "$label: addon loads" FAIL "$info" ;;
    esac
    [ -n "${packages:-}" ] || packages=$(sh docker/runtime-files.sh --packages "$addon" "$(command -v node)" | tr '\n' ' ')
  else
    why=$(grep -h -m 3 -E 'error|Error' "$OUT/$slug.configure.log" "$OUT/$slug.build.log" 2>/dev/null | tr -s ' ' | head -c 300)
    row "$label: KNN_GPU=ON build" FAIL "${why:-see $OUT/$slug.*.log}"
  fi
done
row "runtime packages (ldd -> dpkg)" "$([ -n "${packages:-}" ] && echo ok || echo -)" "${packages:-none}"

echo
echo "=== summary"
printf '%s\n' "${rows[@]}"
