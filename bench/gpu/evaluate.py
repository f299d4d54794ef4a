"""Scores the index files bench/gpu-build.ts wrote and runs the same-run baselines, with Faiss 1.15.

usage: python evaluate.py WORKDIR [--baseline] [--naive TILES]
  every WORKDIR/*.faiss listed in builds.json: read by Faiss, searched (k 10, efSearch 100), recall@10 against
  gt.i32; --baseline: Faiss IndexHNSWFlat (M 16, efConstruction 100, all cores) built and searched the same way;
  --naive TILES: the naive exact k-NN graph (PyTorch TF32 GEMM + topk, 4,096-row tiles, k 64) timed over the first
  TILES row tiles (0 = all) and scaled to all rows.
Prints one JSON object.
"""
import json
import os
import sys
import time

import faiss
import numpy as np

K, EF = 10, 100


def recall(found, truth):
    return float(np.mean([len(np.intersect1d(f[:K], t[:K])) / K for f, t in zip(found, truth)]))


def set_ef(index, ef):
    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    inner.hnsw.efSearch = ef
    return inner


def naive_knn_graph(base, tiles, k=64, tile=4096):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = True
    x = torch.from_numpy(base).cuda()
    norms = (x * x).sum(1)
    n = x.shape[0]
    total = (n + tile - 1) // tile
    run = total if tiles == 0 else min(tiles, total)
    # warm-up (cuBLAS handle, kernels) outside the timing
    s = x[:tile] @ x.T
    torch.topk(norms[None, :] - 2 * s, k + 1, dim=1, largest=False)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(run):
        q = x[i * tile : (i + 1) * tile]
        dist = norms[None, :] - 2 * (q @ x.T)
        torch.topk(dist, k + 1, dim=1, largest=False)
    torch.cuda.synchronize()
    sec = time.perf_counter() - t
    return {"naiveTilesTimed": run, "naiveTiles": total, "naiveSeconds": sec * total / run}


def main():
    work = sys.argv[1]
    args = sys.argv[2:]
    meta = json.load(open(f"{work}/meta.json"))
    n, d, nq = meta["n"], meta["d"], meta["queries"]
    faiss.omp_set_num_threads(os.cpu_count())
    queries = np.fromfile(f"{work}/queries.f32", dtype=np.float32).reshape(nq, d)
    truth = np.fromfile(f"{work}/gt.i32", dtype=np.int32).reshape(nq, -1)
    out = {"faiss": faiss.__version__, "files": {}}
    builds = json.load(open(f"{work}/builds.json"))
    for b in builds:
        t = time.perf_counter()
        index = faiss.read_index(f"{work}/{b['file']}")
        read = time.perf_counter() - t
        assert index.ntotal == n
        set_ef(index, EF)
        t = time.perf_counter()
        _, ids = index.search(queries, K)
        out["files"][b["file"]] = {"recall": recall(ids, truth), "searchSeconds": time.perf_counter() - t,
                                   "readSeconds": read, "type": type(faiss.downcast_index(index.index)).__name__}
        del index
    base = None
    if "--baseline" in args:
        base = np.fromfile(f"{work}/base.f32", dtype=np.float32).reshape(n, d)
        ref = faiss.IndexHNSWFlat(d, 16)
        ref.hnsw.efConstruction = 100
        t = time.perf_counter()
        ref.add(base)
        out["baselineBuildSeconds"] = time.perf_counter() - t
        out["baselineThreads"] = faiss.omp_get_max_threads()
        ref.hnsw.efSearch = EF
        _, ids = ref.search(queries, K)
        out["baselineRecall"] = recall(ids, truth)
        del ref
    if "--naive" in args:
        tiles = int(args[args.index("--naive") + 1])
        if base is None:
            base = np.fromfile(f"{work}/base.f32", dtype=np.float32).reshape(n, d)
        out.update(naive_knn_graph(base, tiles))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
