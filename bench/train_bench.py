#!/usr/bin/python3
"""Training benchmark (Python side), run with Debian's /usr/bin/python3 and python3-torch.

A short end-to-end training run, data loading included, mirroring what `barton train` does on the sample
MMAR mmars/spleen_ct_seg (config/config_train.json), written the way MONAI does it (MONAI itself cannot
be installed here): a CacheDataset filled by a thread pool with the deterministic part of the spleen
chain (bench/pipeline_bench.py: LoadImaged, Spacingd, ScaleIntensityRanged, CropForegroundd); a
DataLoader (shuffle=True, num_workers=0, so batches are produced in the main thread) that gives per item
a deep copy of the cached item, RandCropByPosNegLabeld (S x P^3) and RandShiftIntensityd, collated to
B*S patches per step; the spleen UNet (tests/golden/monai_twin/nn_twin.py, MONAI's default instance
norm as the config names none), DiceLoss (softmax, to_onehot_y) and Adam (lr 2e-4) - forward, loss,
backward, step, zero_grad, for a fixed number of iterations. No AMP (CPU), no train metric, no
validation, no checkpointing.

usage: train_bench.py DATASET_JSON [--iterations N] [--threads T] [--workers W] [--patch P] [--samples S]
                      [--batch B] [--repeats R]
"""
import argparse
import copy
import json
import os
import resource
import statistics
import sys
import time
from multiprocessing.pool import ThreadPool

import numpy as np
import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_HERE, "..", "tests", "golden", "monai_twin"))
import nn_twin as T  # noqa: E402
import pipeline_bench as PB  # noqa: E402


def random_part(cached, rng, patch=96, samples=4):
    """pipeline_bench.random_part with the patch size and num_samples as parameters.

    The defaults (96^3, 4 samples) call pipeline_bench.random_part itself; other values run the same
    steps (and the same draws from rng, in the same order) with the given sizes.
    """
    if patch == 96 and samples == 4:
        return PB.random_part(cached, rng)
    d = copy.deepcopy(cached)  # MONAI CacheDataset copy_cache=True
    label, image = d["label"], d["image"]
    fg = torch.nonzero(label.any(0).flatten()).flatten()
    bg = torch.nonzero(((image > 0).any(0) & ~label.any(0)).flatten()).flatten()
    shape = label.shape[1:]
    size = (patch, patch, patch)
    out = []
    for _ in range(samples):
        pool = fg if rng.rand() < 0.5 else bg
        flat = int(pool[rng.randint(len(pool))])
        center = np.unravel_index(flat, shape)
        c = [min(max(int(v), s // 2), int(n + 1 - s / 2) - 1) for v, s, n in zip(center, size, shape)]
        sl = (slice(None),) + tuple(slice(max(v - s // 2, 0), max(v - s // 2, 0) + s) for v, s in zip(c, size))
        p = {"image": d["image"][sl].clone(), "label": d["label"][sl].clone()}
        if rng.rand() < 0.5:
            p["image"] = p["image"] + rng.uniform(-0.1, 0.1)
        out.append(p)
    return out


def run_once(items, a):
    torch.manual_seed(0)
    rng = np.random.RandomState(0)  # transforms' random state
    shuffle = torch.Generator()
    shuffle.manual_seed(0)  # DataLoader's RandomSampler
    net = T.UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=[16, 32, 64, 128, 256],
                 strides=[2, 2, 2, 2], num_res_units=2)
    loss_fn = T.DiceLoss(to_onehot_y=True, softmax=True)  # smooth_nr = smooth_dr = 1e-5, mean reduction
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    net.train()

    t0 = time.perf_counter()
    with ThreadPool(a.workers) as pool:
        cache = pool.map(PB.deterministic, items)
    t1 = time.perf_counter()
    it = 0
    last = float("nan")
    while it < a.iterations:
        order = torch.randperm(len(cache), generator=shuffle).tolist()
        for b in range(0, len(order), a.batch):  # drop_last=False
            if it >= a.iterations:
                break
            patches = []
            for i in order[b:b + a.batch]:
                patches.extend(random_part(cache[i], rng, a.patch, a.samples))  # list_data_collate flattens
            x = torch.stack([p["image"] for p in patches])
            y = torch.stack([p["label"] for p in patches])
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            last = float(loss.item())
            it += 1
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1, t1 - t0, last


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--patch", type=int, default=96)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    with open(a.dataset) as f:
        ds = json.load(f)
    root = os.path.dirname(os.path.abspath(a.dataset))
    items = [{k: os.path.join(root, v) for k, v in it.items()} for it in ds["training"]]
    total, loop, cache = [], [], []
    last = float("nan")
    for _ in range(a.repeats):
        t, l, c, last = run_once(items, a)
        total.append(t)
        loop.append(l)
        cache.append(c)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"bench": "train", "impl": "python", "iterations": a.iterations, "threads": a.threads,
                      "patch": a.patch, "samples": a.samples, "batch": a.batch,
                      "total_s": statistics.median(total), "loop_s": statistics.median(loop),
                      "cache_s": statistics.median(cache), "total_min_s": min(total), "total_max_s": max(total),
                      "peak_rss_mb": rss, "final_loss": last}))


if __name__ == "__main__":
    main()
