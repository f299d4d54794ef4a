#!/bin/sh
# Run inside the build image by Dockerfile.api: lays out under $1 (default /out) exactly what the service needs at
# run time, and writes $1/runtime-packages.txt, the distribution packages that own the shared libraries the
# native addon and node load (libgomp, libstdc++, cuBLAS, ...), for the runtime image to install.
#   runtime-files.sh [OUT]                 from /app (the build image's layout)
#   runtime-files.sh --packages FILE...    only print the packages for these binaries (scripts/container-gpu-check.sh)
set -eu

# The package owning a library (dpkg knows a file under the name it was packaged with: try the path ldd printed,
# its real path, and both with and without the /usr prefix of merged-/usr systems).
owner() {
  for p in "$1" "$(readlink -f "$1")"; do
    for q in "$p" "${p#/usr}" "/usr$p"; do
      dpkg-query -S "$q" 2>/dev/null | sed -n '1s/:.*//p' | grep . && return 0
    done
  done
  echo "runtime-files: no package owns $1" >&2
}

# Fails when a library of these binaries is not found; prints the owning packages, one a line.
packages_of() {
  missing=$(ldd "$@" | grep 'not found' || true)
  if [ -n "$missing" ]; then
    echo "runtime-files: unresolved libraries:" >&2
    echo "$missing" >&2
    return 1
  fi
  ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u | while read -r lib; do owner "$lib"; done | sort -u
}

if [ "${1:-}" = --packages ]; then
  shift
  packages_of "$@"
  exit
fi

out=${1:-/out}
app=/app
addon=build/native/Release/knn_native.node
node=$(command -v node)

mkdir -p "$out/app/build/native/Release" "$out/usr/local/bin"
cp -a "$app/dist" "$app/node_modules" "$app/package.json" "$out/app/"
cp -a "$app/$addon" "$out/app/$addon"
cp -a "$node" "$out/usr/local/bin/node"
# Source maps and TypeScript declarations are not needed to run (stack traces keep file and line of dist/).
find "$out/app/dist" \( -name '*.map' -o -name '*.d.ts' \) -delete

packages_of "$app/$addon" "$node" >"$out/runtime-packages.txt"
echo "runtime packages: $(tr '\n' ' ' <"$out/runtime-packages.txt")"
