"""Reads index.faiss (written by bench/cpu-build.ts) with Faiss 1.15, searches the held-out queries and scores recall@k against exact k-NN.

usage: python search_faiss115.py WORKDIR [--baseline]   (reads meta.json, base.f32, queries.f32, index.faiss)
--baseline also builds the same IndexHNSWFlat with Faiss 1.15 itself, for comparison.
Prints one JSON object.
"""
import json
import sys
import time

import faiss
import numpy as np


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = sum(len(np.intersect1d(f[:k], t)) for f, t in zip(found, truth))
    return hits / truth.size


def search(index, queries: np.ndarray, k: int, ef: int):
    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    inner.hnsw.efSearch = ef
    start = time.perf_counter()
    _, ids = index.search(queries, k)
    return ids, time.perf_counter() - start


def main(workdir: str, baseline: bool) -> None:
    meta = json.load(open(f"{workdir}/meta.json"))
    n, d, nq, k, ef = meta["n"], meta["d"], meta["queries"], meta["k"], meta["efSearch"]
    metric = faiss.METRIC_INNER_PRODUCT if meta["metric"] == "innerproduct" else faiss.METRIC_L2
    base = np.fromfile(f"{workdir}/base.f32", dtype=np.float32).reshape(n, d)
    queries = np.fromfile(f"{workdir}/queries.f32", dtype=np.float32).reshape(nq, d)

    start = time.perf_counter()
    exact = faiss.IndexFlat(d, metric)
    exact.add(base)
    _, truth = exact.search(queries, k)
    out = {"faiss": faiss.__version__, "groundTruthSeconds": time.perf_counter() - start}

    index = faiss.read_index(f"{workdir}/index.faiss")
    assert index.ntotal == n, f"index holds {index.ntotal} vectors, expected {n}"
    ids, seconds = search(index, queries, k, ef)
    out.update(recall=recall(ids, truth), searchSeconds=seconds)

    if baseline:
        ref = faiss.IndexHNSWFlat(d, meta["M"], metric)
        ref.hnsw.efConstruction = meta["efConstruction"]
        start, cpu = time.perf_counter(), time.process_time()
        ref.add(base)
        out["baselineBuildSeconds"] = time.perf_counter() - start
        out["baselineBuildCpuSeconds"] = time.process_time() - cpu
        ids, _ = search(ref, queries, k, ef)
        out["baselineRecall"] = recall(ids, truth)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], "--baseline" in sys.argv[2:])
