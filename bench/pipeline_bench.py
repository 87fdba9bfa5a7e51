#!/usr/bin/python3
"""Pipeline benchmark (Python side), run with Debian's /usr/bin/python3 and python3-torch.

The same work as bench/pipeline_bench.cpp, written the way MONAI does it (MONAI itself cannot be
installed here): nibabel loading to float32, Spacing by affine_grid + grid_sample in float64 (MONAI's
default dtype), ScaleIntensityRange, CropForeground, a CacheDataset filled by a thread pool; then per
access a deep copy of the cached item (copy_cache=True), RandCropByPosNegLabel (4 x 96^3, indices
computed per call as map_binary_to_indices does) and RandShiftIntensity.

usage: pipeline_bench.py DATASET_JSON [--repeats R] [--epochs E] [--workers W] [--threads T]
"""
import argparse
import copy
import json
import os
import resource
import statistics
import time
from multiprocessing.pool import ThreadPool

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F


def load(path):
    img = nib.load(path)
    data = torch.as_tensor(np.asanyarray(img.dataobj).astype(np.float32))[None]
    return data, np.asarray(img.affine, dtype=np.float64)


def spacing(data, affine, pixdim, mode):
    r = 3
    a = affine
    rzs = a[:r, :r]
    zs = np.linalg.cholesky(rzs.T @ rzs).T
    new = np.eye(4)
    new[:r, :r] = rzs @ np.linalg.inv(zs) @ np.diag(np.abs(pixdim))
    shape = np.array(data.shape[1:], dtype=float)
    corners = np.asarray(np.meshgrid(*[(0.0, d - 1.0) for d in shape], indexing="ij")).reshape(3, -1)
    corners = np.concatenate((corners, np.ones_like(corners[:1])))
    out_c = np.linalg.solve(new, a) @ corners
    world = a @ corners
    all_dist = out_c[:-1].copy()
    out_c = out_c[:-1] / out_c[-1]
    out_shape = np.round(out_c.max(1) - out_c.min(1) + 1.0).astype(int)
    offset = None
    for i in range(corners.shape[1]):
        if np.allclose(np.min(all_dist - all_dist[:, i:i + 1], 1), 0.0):
            offset = world[:-1, i]
            break
    if offset is None:
        offset = world[:-1].min(1)
    new[:r, 3] = offset
    xform = torch.as_tensor(np.linalg.solve(a, new))[None]

    def norm(s):
        n = torch.tensor([float(v) for v in s], dtype=torch.float64)
        m = torch.diag(torch.cat((2.0 / n, torch.ones(1, dtype=torch.float64))))
        m[:-1, -1] = 1.0 / n - 1.0
        return m[None]

    theta = norm(data.shape[1:]) @ xform @ torch.inverse(norm(out_shape))
    rev = torch.tensor([2, 1, 0])
    theta[:, :3] = theta[:, rev]
    theta[:, :, :3] = theta[:, :, rev]
    grid = F.affine_grid(theta[:, :3], [1, data.shape[0], *[int(v) for v in out_shape]], align_corners=False)
    out = F.grid_sample(data[None].double(), grid, mode=mode, padding_mode="border", align_corners=False)[0]
    return out.float(), a @ xform[0].numpy()


def deterministic(item):
    image, ia = load(item["image"])
    label, la = load(item["label"])
    image, ia = spacing(image, ia, [1.0, 1.0, 1.0], "bilinear")
    label, la = spacing(label, la, [1.0, 1.0, 1.0], "nearest")
    image = ((image - -57.0) / (164.0 - -57.0)).clamp(0.0, 1.0)
    mask = (image > 0).any(0)
    box = []
    for d in range(3):
        others = tuple(o for o in range(3) if o != d)
        idx = torch.nonzero(mask.any(dim=others[1]).any(dim=others[0]) if d == 0 else
                            mask.any(dim=others[1]).any(dim=others[0])).flatten()
        box.append((int(idx.min()), int(idx.max()) + 1))
    sl = (slice(None),) + tuple(slice(s, e) for s, e in box)
    return {"image": image[sl], "label": label[sl], "image_affine": ia, "label_affine": la}


def random_part(cached, rng):
    d = copy.deepcopy(cached)  # MONAI CacheDataset copy_cache=True
    label, image = d["label"], d["image"]
    fg = torch.nonzero(label.any(0).flatten()).flatten()
    bg = torch.nonzero(((image > 0).any(0) & ~label.any(0)).flatten()).flatten()
    shape = label.shape[1:]
    size = (96, 96, 96)
    out = []
    for _ in range(4):
        pool = fg if rng.rand() < 0.5 else bg
        flat = int(pool[rng.randint(len(pool))])
        center = np.unravel_index(flat, shape)
        c = [min(max(int(v), s // 2), int(n + 1 - s / 2) - 1) for v, s, n in zip(center, size, shape)]
        sl = (slice(None),) + tuple(slice(max(v - s // 2, 0), max(v - s // 2, 0) + s) for v, s in zip(c, size))
        patch = {"image": d["image"][sl].clone(), "label": d["label"][sl].clone()}
        if rng.rand() < 0.5:
            patch["image"] = patch["image"] + rng.uniform(-0.1, 0.1)
        out.append(patch)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.dataset) as f:
        ds = json.load(f)
    root = os.path.dirname(os.path.abspath(a.dataset))
    items = [{k: os.path.join(root, v) for k, v in it.items()} for it in ds["training"]]
    det, rnd = [], []
    patches = 0
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        with ThreadPool(a.workers) as pool:
            cache = pool.map(deterministic, items)
        t1 = time.perf_counter()
        rng = np.random.RandomState(0)
        patches = 0
        for _ in range(a.epochs):
            for c in cache:
                patches += len(random_part(c, rng))
        t2 = time.perf_counter()
        det.append(t1 - t0)
        rnd.append(t2 - t1)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "python", "cases": len(items), "threads": a.threads, "workers": a.workers,
                      "repeats": a.repeats, "deterministic_s": statistics.median(det), "deterministic_min_s": min(det),
                      "deterministic_max_s": max(det), "random_s": statistics.median(rnd), "random_min_s": min(rnd),
                      "random_max_s": max(rnd), "patches": patches, "peak_rss_mb": rss}))


if __name__ == "__main__":
    main()
