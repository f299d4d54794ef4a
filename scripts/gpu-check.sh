#!/usr/bin/env bash
# The one script for the GPU machine: builds the addon with CUDA (sm_90), runs the kernel self-test, the GPU tests
# and the benchmark, and prints a short table at the end; logs go to $OUT (or .tmp/gpu-check).
#   scripts/gpu-check.sh [STEP ...]   steps: build selftest tests service conformance bench (default: all six),
#                                     e2e, warm, ptx
#   service: the real service (BUILDER=gpu, local store) driven by the k-NN client; files checked by Faiss 1.15
#   conformance: test/conformance with BUILDER=gpu: every data type x space x skip x policy, each file loaded and
#                searched by k-NN's own Faiss checkers (3.1/3.5/3.8); results JSON in $OUT
#   e2e: bench/e2e.ts through the service (BUILDER=gpu, local store, GPU_MEMORY_LIMIT=16): 1M x 768 float,
#        half_float, byte, binary, then 5M x 768 float (no GPU cap: it needs about 16.9 GiB); per-phase times, bytes sent and copied
#   warm: cold vs warm build workers: bench/e2e.ts (BUILDER=gpu, local store) runs the same 200k x 768 float build
#         3 times with WARM_WORKERS=false (a fresh process per job: each sets up CUDA and cuBLAS) and 3 times with
#         warm workers (GPU set up once per worker at service start); build seconds and POST -> COMPLETED per job
#   ptx: the addon built PTX-only for compute_75 (KNN_CUDA_ARCHS=75-virtual, JIT-compiled at load), its self-test
#        and a 1M x 768 float build through the service with it
#   steady (not in the default list): three 1M x 768 float jobs in a row through one service, with huge pages on
#     the local store's read buffers and without (LOCAL_READ_HUGE_PAGES), each service's log kept in $OUT
#   local-io (not in the default list): the local store's reads, copies and writes vs dd/cp of the same 3 GiB file
#     (bench/local-store.ts; LOCAL_IO_ARGS default "--mib 3072 --runs 2 --dir /tmp"); needs the build step's addon
#   host-memory (not in the default list): one job per process through the pipeline with the GPU builder (float,
#     half_float, byte, binary; HOST_MEMORY_ARGS "count dimension", default "1000000 768"): peak RSS against the
#     admission estimate (estimateHostBytes), FAIL when a peak is over it
#   cpu-bench (not in the default list): the CPU builder vs faiss-cpu 1.15 on this host's cores (bench/cpu.ts),
#     CPU_BENCH_ARGS default "--sets 128x1m --threads all"; needs the build step's addon
# Environment: BENCH_ARGS (passed to bench/gpu-build.ts, default "--n 1000000 --plan 128:flat,hier;768:flat,hier,exact
# --baseline --naive 64"), KNN_CUDA_ARCHS (default 90).
# Needs what scripts/gpu-bundle.sh prepared (carry .gpu-pack build/gpu-bundle .whl node_modules/node-addon-api
# node_modules/node-api-headers).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/.tmp/gpu-check}"
mkdir -p "$OUT"
steps="${*:-build selftest tests service conformance bench}"
source .gpu-pack/env.sh
summary=()
step() { summary+=("$(printf '%-9s %-5s %6.1f s' "$1" "$2" "$3")"); }
run_step() {  # name, command...: runs with a log, records status and time
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name: $*"
  if "$@" > >(tee "$OUT/$name.log") 2>&1; then step "$name" ok $((SECONDS - t0)); return 0; fi
  step "$name" FAIL $((SECONDS - t0)); return 1
}

build() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  nvcc --version | tail -1
  df -h /tmp "$PWD" | sed 's/^/disk: /'
  echo "node $(node --version) (.gpu-pack, made by scripts/gpu-pack.sh)"
  cmake -S src/native -B build/native -G Ninja -DKNN_GPU=ON -DKNN_GPU_TESTS=ON \
    -DKNN_CUDA_ARCHS="${KNN_CUDA_ARCHS:-90}" -DCMAKE_JS_INC="$PWD/node_modules/node-api-headers/include;$PWD/node_modules/node-addon-api" &&
    cmake --build build/native -j "$(nproc)" &&
    test -f build/native/knn_native.node
}
ptx_build() {
  cmake -S src/native -B build/native-ptx -G Ninja -DKNN_GPU=ON -DKNN_GPU_TESTS=ON -DKNN_CUDA_ARCHS=75-virtual \
    -DCMAKE_JS_INC="$PWD/node_modules/node-api-headers/include;$PWD/node_modules/node-addon-api" &&
    cmake --build build/native-ptx -j "$(nproc)" || return 1
  # What the binary carries: compute_75 PTX only, no machine code (cuobjdump ships with nvcc).
  local ptx elf
  ptx=$(cuobjdump --list-ptx build/native-ptx/gpu_selftest 2>&1)
  elf=$(cuobjdump --list-elf build/native-ptx/gpu_selftest 2>&1)
  echo "ptx: ${ptx:-none}"
  echo "elf: ${elf:-none}"
  [[ $ptx == *sm_75* && $elf != *sm_[0-9]* ]] && echo "PTX-only compute_75: yes" || echo "PTX-only compute_75: NOT CONFIRMED"
}
e2e_bench() {  # name, e2e.mjs args...
  local name=$1; shift
  BENCH_LOCAL_ROOT="${BENCH_LOCAL_ROOT:-/tmp}" GPU_MEMORY_LIMIT="${E2E_GPU_MEMORY_LIMIT-16}" node build/gpu-bundle/bench/e2e.js --store local \
    --builder gpu --dimension 768 --name "$name" "$@" &&
    cp "build/gpu-bundle/bench/results/$name.json" "$OUT/"
}
python_deps() {
  [ -d /tmp/site/faiss ] && return 0
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl &&
    echo "faiss $(PYTHONPATH=/tmp/site python3 -c 'import faiss; print(faiss.__version__)')"
}

export KNN_NATIVE_ADDON="$PWD/build/native/knn_native.node"
for s in $steps; do
  case $s in
    build) run_step build build || break ;;
    selftest) run_step selftest build/native/gpu_selftest ;;
    tests) run_step tests node --test --test-reporter=tap build/gpu-bundle/test/gpu/run.mjs ;;
    service)
      run_step pydeps python_deps || continue
      PYTHONPATH=/tmp/site run_step service node build/gpu-bundle/test/gpu/service-smoke.mjs \
        build/gpu-bundle/service/main.js python3
      ;;
    conformance)
      mkdir -p .tmp/knn-faiss
      for r in 3.1 3.5 3.8; do
        xz -dc "build/gpu-bundle/knn-faiss/knn-faiss-check-$r.xz" >".tmp/knn-faiss/knn-faiss-check-$r" &&
          chmod +x ".tmp/knn-faiss/knn-faiss-check-$r"
      done
      KNN_FAISS_CHECKERS="$PWD/.tmp/knn-faiss" run_step conformance \
        node build/gpu-bundle/test/gpu/conformance.mjs build/gpu-bundle/service/main.js "$OUT/conformance-results-gpu.json"
      ;;
    bench)
      run_step pydeps python_deps || continue
      export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
      # shellcheck disable=SC2086
      run_step bench node build/gpu-bundle/bench/gpu-build.mjs \
        ${BENCH_ARGS:---n 1000000 --plan 128:flat,hier;768:flat,hier,exact --baseline --naive 64}
      cp build/gpu-bundle/bench/results/gpu-build.json "$OUT/" 2>/dev/null
      ;;
    e2e)
      run_step e2e-1m e2e_bench e2e-gpu-1m --sizes 1000000 --types float,half_float,byte,binary
      # 5M x 768 float needs about 16.9 GiB of GPU memory by the planner's estimate: under GPU_MEMORY_LIMIT=16 it is
      # refused (BUILDER=gpu) or planned for the CPU (auto), so the timing run has no cap.
      E2E_GPU_MEMORY_LIMIT='' run_step e2e-5m e2e_bench e2e-gpu-5m --sizes 5000000 --types float
      ;;
    warm)
      WARM_WORKERS=false run_step warm-cold e2e_bench e2e-gpu-cold --sizes 200000 --types float --repeat 3
      WARM_WORKERS=true run_step warm-warm e2e_bench e2e-gpu-warm --sizes 200000 --types float --repeat 3
      ;;
    ptx)
      run_step ptx-build ptx_build || continue
      run_step ptx-selftest build/native-ptx/gpu_selftest
      KNN_NATIVE_ADDON="$PWD/build/native-ptx/knn_native.node" run_step ptx-e2e e2e_bench e2e-gpu-ptx \
        --sizes 1000000 --types float
      ;;
    steady)
      grep -H . /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag
      free -g
      for hp in true false; do
        LOCAL_READ_HUGE_PAGES=$hp BENCH_SERVICE_LOG="$OUT/steady-hp-$hp-service.log" run_step "steady-hp-$hp" \
          e2e_bench "e2e-gpu-1m-steady-hp-$hp" --sizes 1000000 --types float --repeat 3
      done
      ;;
    local-io)
      df -h /tmp | sed 's/^/disk: /'
      # shellcheck disable=SC2086
      run_step local-io node build/gpu-bundle/bench/local-store.mjs ${LOCAL_IO_ARGS:---mib 3072 --runs 2 --dir /tmp}
      cp build/gpu-bundle/bench/results/local-store.json "$OUT/" 2>/dev/null
      ;;
    host-memory)
      # shellcheck disable=SC2086
      run_step host-memory node build/gpu-bundle/host-memory/host-memory.mjs \
        build/gpu-bundle/host-memory/peak-rss-job.mjs ${HOST_MEMORY_ARGS:-1000000 768}
      ;;
    cpu-bench)
      run_step pydeps python_deps || continue
      # shellcheck disable=SC2086
      PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 run_step cpu-bench node build/gpu-bundle/bench/cpu.mjs \
        ${CPU_BENCH_ARGS:---sets 128x1m --threads all}
      cp build/gpu-bundle/bench/results/cpu.json "$OUT/" 2>/dev/null
      ;;
    *) echo "unknown step $s" ;;
  esac
done
echo
echo "=== summary ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))"
grep -h -E "^(  ok|  FAIL|all GPU|.*check\(s\) failed)" "$OUT/selftest.log" 2>/dev/null | sed 's/^/selftest: /' | tail -20
grep -h -E "^# (tests|pass|fail|skipped)" "$OUT/tests.log" 2>/dev/null | sed 's/^/tests: /'
sed -n '/^=== service on the GPU/,$p' "$OUT/service.log" 2>/dev/null
grep -h -E "^(=== k-NN conformance|FAIL|conformance:)" "$OUT/conformance.log" 2>/dev/null
sed -n "/^GPU build (m 16/,/^results:/p" "$OUT/bench.log" 2>/dev/null | grep -v "^results:"
grep -h -E "^(CUDA context|.*exact k-NN stage)" "$OUT/bench.log" 2>/dev/null
grep -h "^PTX-only" "$OUT/ptx-build.log" 2>/dev/null
for f in e2e-1m e2e-5m ptx-e2e warm-cold warm-warm; do sed -n "/^End to end/,/^results:/p" "$OUT/$f.log" 2>/dev/null | grep -v "^results:"; done
sed -n "/^Local store vs dd/,/^results:/p" "$OUT/local-io.log" 2>/dev/null | grep -v "^results:"
sed -n "/^CPU build: ours vs faiss/,/^results:/p" "$OUT/cpu-bench.log" 2>/dev/null | grep -v "^results:"
sed -n "/^=== host memory/,/^host memory:/p" "$OUT/host-memory.log" 2>/dev/null
printf '%s\n' "${summary[@]}"
