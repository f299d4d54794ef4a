"""Synthetic benchmark data for bench/gpu-build.ts, made on the GPU with PyTorch (fast) or numpy (fallback).

1,000 Gaussian clusters in a 64-d latent space (centres ~ N(0, 1), points ~ centre + N(0, 0.35^2): the
project's synthetic defaults), projected to d by one random matrix, plus N(0, 0.05^2) noise in the full space;
`queries` held-out rows drawn the same way; exact ground truth (top 100) of the queries by L2.

usage: python data.py OUTDIR N D [QUERIES]   writes base.f32, queries.f32, gt.i32 (queries x 100), meta.json
Prints one JSON object (the meta).
"""
import json
import os
import sys
import time

import numpy as np

CLUSTERS, LATENT, CLUSTER_SPREAD, NOISE, SEED = 1000, 64, 0.35, 0.05, 2026


def generate_torch(n, d, nq, out):
    import torch

    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(SEED)
    centres = torch.randn(CLUSTERS, LATENT, device=dev, generator=g)
    proj = torch.randn(LATENT, d, device=dev, generator=g) / LATENT**0.5
    total = n + nq
    with open(f"{out}/base.f32", "wb") as fb, open(f"{out}/queries.f32", "wb") as fq:
        step = 1 << 18
        for s in range(0, total, step):
            m = min(step, total - s)
            lab = torch.randint(0, CLUSTERS, (m,), device=dev, generator=g)
            z = centres[lab] + CLUSTER_SPREAD * torch.randn(m, LATENT, device=dev, generator=g)
            x = (z @ proj + NOISE * torch.randn(m, d, device=dev, generator=g)).float().cpu().numpy()
            # rows [0, n) are the base, the rest the queries
            cut = max(0, min(m, n - s))
            fb.write(x[:cut].tobytes())
            fq.write(x[cut:].tobytes())


def ground_truth(n, d, nq, out, k=100):
    import torch

    base = torch.from_numpy(np.fromfile(f"{out}/base.f32", dtype=np.float32).reshape(n, d)).cuda()
    q = torch.from_numpy(np.fromfile(f"{out}/queries.f32", dtype=np.float32).reshape(nq, d)).cuda().double()
    best_d = torch.full((nq, k), float("inf"), device="cuda", dtype=torch.float64)
    best_i = torch.zeros((nq, k), device="cuda", dtype=torch.int64)
    for s in range(0, n, 1 << 17):
        b = base[s : s + (1 << 17)].double()
        dist = (q * q).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2 * q @ b.T
        cd = torch.cat([best_d, dist], 1)
        ci = torch.cat([best_i, torch.arange(s, s + b.shape[0], device="cuda")[None, :].expand(nq, -1)], 1)
        best_d, idx = cd.topk(k, dim=1, largest=False)
        best_i = ci.gather(1, idx)
    best_i.int().cpu().numpy().tofile(f"{out}/gt.i32")


def main():
    out, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    nq = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    os.makedirs(out, exist_ok=True)
    meta = {"n": n, "d": d, "queries": nq, "metric": "l2", "clusters": CLUSTERS, "latent": LATENT,
            "clusterSpread": CLUSTER_SPREAD, "noise": NOISE, "seed": SEED}
    t = time.perf_counter()
    generate_torch(n, d, nq, out)
    meta["generateSeconds"] = time.perf_counter() - t
    t = time.perf_counter()
    ground_truth(n, d, nq, out)
    meta["groundTruthSeconds"] = time.perf_counter() - t
    json.dump(meta, open(f"{out}/meta.json", "w"))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
