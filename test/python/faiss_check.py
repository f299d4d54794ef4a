#!/usr/bin/env python3
"""Real Faiss as the judge of our index files: load, describe, search, rewrite, measure recall.

Works with Faiss 1.15 (.venv-faiss/bin/python) and Debian's Faiss 1.7.3 (/usr/bin/python3). Every command prints
one JSON document on stdout; failures exit non-zero with the reason on stderr.

  faiss_check.py info FILE [--ids]
      Loads FILE with faiss.read_index / read_index_binary (picked from the first fourcc) and prints the class of
      each nested index, d, ntotal, metric_type, HNSW fields, storage fields and (with --ids) the id map.
  faiss_check.py search FILE --queries Q.bin --k K [--ef EF] [--entry NODE]
      Q.bin holds raw queries: float32 rows of d values, or d/8 uint8 rows for binary indexes.
      Prints {"ids": [[...]], "distances": [[...]]}; ids are the id map's values. --entry makes a base-level-only
      (CAGRA) index search like a plain HNSW from that node (base_level_only off, max_level 0): deterministic,
      and it sidesteps Faiss 1.15's IndexBinaryHNSWCagra base-level search, which returns empty rows for some
      queries even on graphs Faiss built itself.
  faiss_check.py rewrite FILE OUT
      Writes the loaded index back with faiss.write_index(_binary); prints {"bytes": n, "identical": bool}.
  faiss_check.py recall FILE --vectors V.knnvec --doc-ids D.knndid --data-type T --dimension N
                        [--queries Q.bin | --num-queries Q --seed S] [--k 10] [--ef EF] [--space l2|innerproduct]
                        [--entry NODE]
      Exact ground truth from the .knnvec (numpy brute force; L2, inner product, or Hamming for binary), mapped
      to doc ids through the .knndid, against the index's search results (which go through its id map).
      Without --queries, queries are stored vectors plus small noise. Prints recall@k and details.
  faiss_check.py hnsw-defaults M [M ...]
      Faiss's own assign_probas and cum_nneighbor_per_level for each M (from a serialized empty IndexHNSWFlat).
  faiss_check.py batch
      Reads a JSON list of {"cmd": ..., ...options} from stdin (options named as above, without dashes, e.g.
      {"cmd": "info", "file": "a.faiss", "ids": true}) and prints a JSON list of results, each with "ok" and
      either the result or "error". One Python start for many checks.
"""
import argparse
import json
import os
import sys

import faiss
import numpy as np

BINARY_FOURCCS = {b"IBMp", b"IBM2", b"IBHf", b"IBHc", b"IBxF", b"IBwF", b"IBFf", b"IBHh", b"IBHm"}


def is_binary_file(path):
    with open(path, "rb") as f:
        return f.read(4) in BINARY_FOURCCS


def load(path):
    if is_binary_file(path):
        return faiss.read_index_binary(path), True
    return faiss.read_index(path), False


def downcast(index, binary):
    if index is None:
        return None
    return faiss.downcast_IndexBinary(index) if binary else faiss.downcast_index(index)


def vec(v):
    return faiss.vector_to_array(v)


def describe(path, with_ids=False):
    index, binary = load(path)
    outer = downcast(index, binary)
    chain = [type(outer).__name__]
    out = {
        "faiss_version": faiss.__version__,
        "binary": binary,
        "d": int(outer.d),
        "ntotal": int(outer.ntotal),
        "metric_type": int(outer.metric_type),
        "is_trained": bool(outer.is_trained),
    }
    inner = outer
    if hasattr(outer, "id_map"):
        ids = vec(outer.id_map)
        out["id_count"] = int(ids.size)
        out["id_first"] = int(ids[0]) if ids.size else None
        out["id_last"] = int(ids[-1]) if ids.size else None
        if with_ids:
            out["ids"] = ids.tolist()
        inner = downcast(outer.index, binary)
        chain.append(type(inner).__name__)
    if hasattr(inner, "hnsw"):
        h = inner.hnsw
        levels = vec(h.levels)
        out["hnsw"] = {
            "entry_point": int(h.entry_point),
            "max_level": int(h.max_level),
            "efSearch": int(h.efSearch),
            "efConstruction": int(h.efConstruction),
            "levels": np.bincount(levels).tolist() if levels.size else [],
            "neighbors": int(h.neighbors.size()),
            "cum_nneighbor_per_level": vec(h.cum_nneighbor_per_level).tolist(),
        }
        for name in ("base_level_only", "num_base_level_search_entrypoints", "keep_max_size_level0"):
            if hasattr(inner, name):
                out["hnsw"][name] = int(getattr(inner, name))
        if hasattr(inner, "numeric_type_"):
            out["hnsw"]["numeric_type"] = int(inner.numeric_type_)
        storage = downcast(inner.storage, binary)
        chain.append(type(storage).__name__ if storage is not None else None)
        if storage is not None:
            out["storage"] = {"d": int(storage.d), "ntotal": int(storage.ntotal), "code_size": int(storage.code_size)}
            if hasattr(storage, "sq"):
                out["storage"]["qtype"] = int(storage.sq.qtype)
    out["classes"] = chain
    return out


def hnsw_of(index, binary):
    outer = downcast(index, binary)
    return downcast(outer.index, binary) if hasattr(outer, "id_map") else outer


def run_search(index, binary, queries, k, ef, entry=None):
    inner = hnsw_of(index, binary)
    if ef is not None:
        inner.hnsw.efSearch = int(ef)
    if entry is not None:
        if hasattr(inner, "base_level_only"):
            inner.base_level_only = False
        inner.hnsw.entry_point = int(entry)
        inner.hnsw.max_level = 0
    distances, ids = index.search(queries, k)
    return ids, distances


def read_queries(path, index, binary):
    raw = np.fromfile(path, dtype=np.uint8 if binary else np.float32)
    width = index.d // 8 if binary else index.d
    if raw.size % width:
        raise ValueError("%s holds %d values, not a whole number of %d-wide queries" % (path, raw.size, width))
    return raw.reshape(-1, width)


def search(path, queries, k, ef=None, entry=None):
    index, binary = load(path)
    ids, distances = run_search(index, binary, read_queries(queries, index, binary), int(k), ef, entry)
    return {"ids": ids.tolist(), "distances": distances.astype(float).tolist()}


def rewrite(path, out):
    index, binary = load(path)
    if binary:
        faiss.write_index_binary(index, out)
    else:
        faiss.write_index(index, out)
    with open(path, "rb") as a, open(out, "rb") as b:
        same = a.read() == b.read()
    return {"bytes": os.path.getsize(out), "identical": same}


def load_vectors(path, data_type, dimension):
    """The .knnvec as numpy: float32 rows (float, half_float), int8 rows (byte), uint8 rows (binary)."""
    dtype = {"float": np.float32, "half_float": np.float32, "byte": np.int8, "binary": np.uint8}[data_type]
    width = dimension // 8 if data_type == "binary" else dimension
    return np.fromfile(path, dtype=dtype).reshape(-1, width)


def exact_neighbors(base, queries, k, data_type, space):
    if data_type == "binary":
        bits = np.unpackbits(base, axis=1).astype(np.int32)
        qbits = np.unpackbits(queries, axis=1).astype(np.int32)
        dist = (qbits[:, None, :] != bits[None, :, :]).sum(axis=2)
        return np.argsort(dist, axis=1, kind="stable")[:, :k]
    b = base.astype(np.float32)
    q = queries.astype(np.float32)
    if space == "innerproduct":
        return np.argsort(-(q @ b.T), axis=1, kind="stable")[:, :k]
    dist = (q * q).sum(1)[:, None] - 2 * (q @ b.T) + (b * b).sum(1)[None, :]
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def recall(path, vectors, doc_ids, data_type, dimension, k=10, ef=None, queries=None, num_queries=100, seed=1,
           space="l2", entry=None):
    index, binary = load(path)
    base = load_vectors(vectors, data_type, int(dimension))
    ids = np.fromfile(doc_ids, dtype="<i4")
    if ids.size != base.shape[0]:
        raise ValueError("%d doc ids for %d vectors" % (ids.size, base.shape[0]))
    k = int(k)
    if queries:
        q = read_queries(queries, index, binary)
    else:
        rng = np.random.default_rng(int(seed))
        pick = rng.choice(base.shape[0], size=min(int(num_queries), base.shape[0]), replace=False)
        q = base[pick].copy()
        if data_type == "binary":
            flip = rng.integers(0, q.shape[1] * 8, size=q.shape[0])
            q[np.arange(q.shape[0]), flip // 8] ^= (1 << (flip % 8)).astype(np.uint8)
        elif data_type == "byte":
            q = q.astype(np.float32)
        else:
            q = q + rng.normal(0, 1e-3, size=q.shape).astype(np.float32)
    truth = ids[exact_neighbors(base, q if binary else q.astype(np.float32), k, data_type, space)]
    found, _ = run_search(index, binary, q if binary else np.ascontiguousarray(q, dtype=np.float32), k, ef, entry)
    hits = sum(len(set(t.tolist()) & set(f.tolist())) for t, f in zip(truth, found))
    return {
        "recall": hits / float(truth.size),
        "k": k,
        "queries": int(q.shape[0]),
        "top1_match": float(np.mean(truth[:, 0] == found[:, 0])),
        "unknown_ids": int(np.setdiff1d(found[found >= 0], ids).size),
    }


def hnsw_defaults(ms):
    out = {}
    for m in ms:
        b = bytes(faiss.serialize_index(faiss.IndexHNSWFlat(4, int(m))))
        at = 4 + 4 + 8 + 8 + 8 + 1 + 4  # fourcc and index header
        n = int(np.frombuffer(b, "<u8", 1, at)[0])
        probas = np.frombuffer(b, "<f8", n, at + 8)
        at += 8 + 8 * n
        n = int(np.frombuffer(b, "<u8", 1, at)[0])
        cum = np.frombuffer(b, "<i4", n, at + 8)
        out[str(m)] = {"assign_probas": probas.tolist(), "cum_nneighbor_per_level": cum.tolist()}
    return out


COMMANDS = {
    "info": lambda o: describe(o["file"], o.get("ids", False)),
    "search": lambda o: search(o["file"], o["queries"], o.get("k", 10), o.get("ef"), o.get("entry")),
    "rewrite": lambda o: rewrite(o["file"], o["out"]),
    "hnsw-defaults": lambda o: hnsw_defaults(o["m"]),
    "recall": lambda o: recall(
        o["file"], o["vectors"], o["doc_ids"], o["data_type"], o["dimension"], o.get("k", 10), o.get("ef"),
        o.get("queries"), o.get("num_queries", 100), o.get("seed", 1), o.get("space", "l2"), o.get("entry")),
}


def batch():
    results = []
    for task in json.load(sys.stdin):
        try:
            results.append({"ok": True, "result": COMMANDS[task["cmd"]](task)})
        except Exception as e:  # one bad file must not hide the others' results
            results.append({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("info")
    s.add_argument("file")
    s.add_argument("--ids", action="store_true")
    s = sub.add_parser("search")
    s.add_argument("file")
    s.add_argument("--queries", required=True)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--ef", type=int)
    s.add_argument("--entry", type=int)
    s = sub.add_parser("rewrite")
    s.add_argument("file")
    s.add_argument("out")
    s = sub.add_parser("recall")
    s.add_argument("file")
    s.add_argument("--vectors", required=True)
    s.add_argument("--doc-ids", dest="doc_ids", required=True)
    s.add_argument("--data-type", dest="data_type", required=True,
                   choices=["float", "half_float", "byte", "binary"])
    s.add_argument("--dimension", type=int, required=True)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--ef", type=int)
    s.add_argument("--queries")
    s.add_argument("--num-queries", dest="num_queries", type=int, default=100)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--space", choices=["l2", "innerproduct", "hamming"], default="l2")
    s.add_argument("--entry", type=int)
    s = sub.add_parser("hnsw-defaults")
    s.add_argument("m", nargs="+", type=int)
    sub.add_parser("batch")
    args = vars(p.parse_args())
    cmd = args.pop("cmd")
    out = batch() if cmd == "batch" else COMMANDS[cmd](args)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
