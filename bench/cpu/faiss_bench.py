"""The Faiss 1.15 side of bench/cpu.ts: builds the same HNSW with faiss-cpu (IndexHNSWFlat, or IndexBinaryHNSW
for bit codes) on THREADS threads, writes it, then loads both index files (ours.faiss from our builder, faiss.faiss)
and scores recall@k at the meta's ef_search against exact k-NN of the held-out queries.

usage: python faiss_bench.py WORKDIR THREADS   (reads meta.json, base.bin, queries.bin, ours.faiss)
Prints one JSON object: faiss version, buildSeconds, cpuSeconds, peakRssBytes, rssBeforeBytes (resident memory
just before the build; the peak is read before ground truth is computed), oursRecall, faissRecall.
Binary recall counts ties: a result is a hit when its hamming distance is at most the k-th exact distance.
"""
import json
import os
import resource
import sys
import time

import faiss
import numpy as np


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def hnsw_of(index):
    inner = index.index if hasattr(index, "id_map") else index
    return (faiss.downcast_IndexBinary(inner) if isinstance(inner, faiss.IndexBinary) else faiss.downcast_index(inner)).hnsw


def main(workdir: str, threads: int) -> None:
    meta = json.load(open(f"{workdir}/meta.json"))
    n, d, nq, k, ef, binary = meta["n"], meta["d"], meta["queries"], meta["k"], meta["efSearch"], meta["binary"]
    if binary:
        base = np.fromfile(f"{workdir}/base.bin", dtype=np.uint8).reshape(n, d // 8)
        queries = np.fromfile(f"{workdir}/queries.bin", dtype=np.uint8).reshape(nq, d // 8)
    else:
        base = np.fromfile(f"{workdir}/base.bin", dtype=np.float32).reshape(n, d)
        queries = np.fromfile(f"{workdir}/queries.bin", dtype=np.float32).reshape(nq, d)
    metric = faiss.METRIC_INNER_PRODUCT if meta["metric"] == "innerproduct" else faiss.METRIC_L2

    if binary:
        ref = faiss.IndexBinaryHNSW(d, meta["M"])
    else:
        ref = faiss.IndexHNSWFlat(d, meta["M"], metric)
    ref.hnsw.efConstruction = meta["efConstruction"]
    faiss.omp_set_num_threads(threads)
    out = {"faiss": faiss.__version__, "rssBeforeBytes": rss_bytes()}
    start, cpu = time.perf_counter(), time.process_time()
    ref.add(base)
    out["buildSeconds"] = time.perf_counter() - start
    out["cpuSeconds"] = time.process_time() - cpu
    out["peakRssBytes"] = peak_rss_bytes()
    (faiss.write_index_binary if binary else faiss.write_index)(ref, f"{workdir}/faiss.faiss")
    del ref

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    read = faiss.read_index_binary if binary else faiss.read_index
    if binary:
        exact = faiss.IndexBinaryFlat(d)
    else:
        exact = faiss.IndexFlat(d, metric)
    exact.add(base)
    truth_d, truth = exact.search(queries, k)

    def recall(file: str) -> float:
        index = read(file)
        assert index.ntotal == n, f"{file} holds {index.ntotal} vectors, expected {n}"
        hnsw_of(index).efSearch = ef
        _, ids = index.search(queries, k)
        if not binary:
            return sum(len(np.intersect1d(f, t)) for f, t in zip(ids, truth)) / truth.size
        hits = 0
        for q, found in enumerate(ids):
            found = found[found >= 0]
            dist = np.unpackbits(np.bitwise_xor(base[found], queries[q]), axis=1).sum(axis=1)
            hits += int((dist <= truth_d[q, -1]).sum())
        return hits / truth.size

    out["oursRecall"] = recall(f"{workdir}/ours.faiss")
    out["faissRecall"] = recall(f"{workdir}/faiss.faiss")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
