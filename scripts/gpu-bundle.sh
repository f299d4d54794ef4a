#!/usr/bin/env bash
# Prepares, on a development machine, what the GPU machine lacks (it has no Node.js, no npm, no network), in ignored
# folders that travel with the tree (name them in the device tool's `carry`):
#   .gpu-pack/         the project's Node 24 (scripts/gpu-pack.sh)
#   build/gpu-bundle/  the GPU tests (test/gpu/run.ts), the service and its smoke test (src/main.ts, src/pipeline/
#                      worker.ts, test/gpu/service-smoke.ts), the k-NN conformance suite (test/gpu/conformance.ts,
#                      with k-NN's Faiss checkers in knn-faiss/), the benchmarks (bench/gpu-build.ts,
#                      bench/cpu.ts, bench/local-store.ts) and the host memory check (test/gpu/host-memory.ts)
#                      bundled by esbuild, with bench/gpu/*.py and bench/cpu/*.py beside them; the .node addon stays
#                      external (built there)
#   .whl/              the faiss-cpu 1.15.1 wheel (the same-run CPU baseline and the recall searches)
# plus node_modules/node-addon-api and node_modules/node-api-headers (headers for the addon build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/gpu-pack.sh
# Minified (names kept, for readable errors): the whole carry must stay under the device tool's 64 MiB.
min=(--minify --keep-names)
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh
rm -rf build/gpu-bundle
mkdir -p build/gpu-bundle/bench/gpu .whl
npx esbuild test/gpu/run.ts test/gpu/service-smoke.ts test/gpu/conformance.ts bench/gpu-build.ts bench/cpu.ts \
  bench/local-store.ts \
  --bundle "${min[@]}" --platform=node --format=esm --target=node24 --outbase=. --outdir=build/gpu-bundle --out-extension:.js=.mjs \
  --log-level=warning
# The service itself (main + the job worker, side by side as src/jobs/process-build.ts expects), for the `service` step.
npx esbuild src/main.ts src/pipeline/worker.ts --bundle "${min[@]}" --platform=node --format=esm --target=node24 \
  --outdir=build/gpu-bundle/service --entry-names='[name]' --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
echo '{"type":"module"}' > build/gpu-bundle/service/package.json
# The end-to-end benchmark with the job worker beside it (src/jobs/process-build.ts forks ./worker.js next to the bundle).
npx esbuild bench/e2e.ts src/pipeline/worker.ts --bundle "${min[@]}" --platform=node --format=esm --target=node24 \
  --outdir=build/gpu-bundle/bench --entry-names='[name]' --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
echo '{"type":"module"}' > build/gpu-bundle/bench/package.json
# The host memory check (a job per process, its peak RSS against the admission estimate), for `host-memory`.
npx esbuild test/gpu/host-memory.ts test/fixtures/peak-rss-job.ts --bundle "${min[@]}" --platform=node --format=esm \
  --target=node24 --outdir=build/gpu-bundle/host-memory --entry-names='[name]' --out-extension:.js=.mjs \
  --log-level=warning --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
cp bench/gpu/*.py build/gpu-bundle/bench/gpu/
# k-NN's Faiss checkers, xz-compressed (6.6 MB -> 1.3 MB each: the tree that travels is limited); gpu-check.sh unpacks.
mkdir -p build/gpu-bundle/knn-faiss
for r in 3.1 3.5 3.8; do
  xz -9 -c "${KNN_FAISS_CHECKERS:-../shared/knn-faiss}/knn-faiss-check-$r" >"build/gpu-bundle/knn-faiss/knn-faiss-check-$r.xz"
done
mkdir -p build/gpu-bundle/bench/cpu && cp bench/cpu/*.py build/gpu-bundle/bench/cpu/
if ! ls .whl/faiss_cpu-1.15.1-*.whl >/dev/null 2>&1; then
  wheel=$(find /opt /root /usr/local -maxdepth 4 -name 'faiss_cpu-1.15.1-*.whl' 2>/dev/null | head -n 1 || true)
  [ -n "$wheel" ] || { echo "no faiss_cpu-1.15.1 wheel found on this machine" >&2; exit 1; }
  cp "$wheel" .whl/
fi
du -sh .gpu-pack build/gpu-bundle .whl node_modules/node-addon-api node_modules/node-api-headers
