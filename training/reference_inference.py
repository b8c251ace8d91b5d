#!/usr/bin/env python3
"""A straightforward PyTorch implementation of Delineate's inference path, for the parity test
(test/integration/parity.test.ts): resample to the model spacing (trilinear, half-pixel centres), normalise, pad at
the high end by edge replication, sliding window with nnU-Net's tile placement and Gaussian importance, mirroring,
softmax, crop. Writes the class probabilities on the model grid as float32 [C, Z, Y, X].

    /usr/bin/python3 training/reference_inference.py --smoke DIR --net unet3d --manifest M.json --volume V.f32 \\
        --dims X Y Z --spacing SX SY SZ --out P.f32
"""
import argparse, itertools, json, math, os, sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smoke import build  # noqa: E402


def half_up(v):  # JavaScript's Math.round, for the same sizes and tile starts
    return int(math.floor(v + 0.5))


def tile_starts(size, patch, overlap):
    if size <= patch:
        return [0]
    n = math.ceil((size - patch) / max(1, patch * (1 - overlap))) + 1  # a step under a voxel would repeat tiles
    return [half_up(i * (size - patch) / (n - 1)) for i in range(n)]


def gaussian(patch_zyx):
    g = [np.exp(-(((np.arange(n) - (n - 1) / 2) / (n / 8)) ** 2) / 2) for n in patch_zyx]
    w = g[0][:, None, None] * g[1][None, :, None] * g[2][None, None, :]
    w = w / w.max() * 10
    w[w == 0] = w[w > 0].min()
    return w


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", required=True)
    p.add_argument("--net", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--volume", required=True)
    p.add_argument("--dims", type=int, nargs=3, required=True)
    p.add_argument("--spacing", type=float, nargs=3, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--timing", action="store_true", help="print the seconds from the volume read to the probabilities (the benchmark)")
    a = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    m = json.load(open(a.manifest))
    arch = json.load(open(os.path.join(a.smoke, "smoke.json")))[a.net]["arch"]
    net = build(arch)
    net.load_state_dict(torch.load(os.path.join(a.smoke, a.net, "model.pt")))
    net.eval()
    two_d = m["dimensions"] == 2
    nx, ny, nz = a.dims
    vol = torch.from_numpy(np.fromfile(a.volume, dtype="<f4").reshape(nz, ny, nx).copy())
    import time
    t0 = time.perf_counter()
    target = m["input"]["spacing"]
    model = [nz if (two_d and ax == 2) else max(1, half_up(n * s / t)) for ax, (n, s, t) in enumerate(zip(a.dims, a.spacing, target))]
    mx, my, mz = model
    x = F.interpolate(vol[None, None], size=(mz, my, mx), mode="trilinear", align_corners=False)
    n = m["normalization"]
    x = (x.clamp(*n["clip"]) - n["mean"]) / n["std"]
    mult = m["input"]["sizeMultiple"]
    inf = m.get("inference", {})
    patch = inf.get("patchSize")
    padded = [mz if (two_d and ax == 2) else max(math.ceil(v / mult) * mult, patch[ax] if patch else 0) for ax, v in enumerate(model)]
    px, py, pz = padded
    x = F.pad(x, (0, px - mx, 0, py - my, 0, pz - mz), mode="replicate")[0, 0]
    tpx, tpy, tpz = patch if patch else (px, py, 1 if two_d else pz)
    weight = torch.from_numpy(gaussian((tpz, tpy, tpx)) if inf.get("blend", "gaussian") == "gaussian" else np.ones((tpz, tpy, tpx)))
    mirror_dims = [{"x": 2, "y": 1, "z": 0}[ax] for ax in inf.get("mirrorAxes", [])]
    combos = [c for r in range(len(mirror_dims) + 1) for c in itertools.combinations(mirror_dims, r)]
    classes = len(m["labels"]) + 1
    total = torch.zeros((classes, pz, py, px), dtype=torch.float64)
    weights = torch.zeros((pz, py, px), dtype=torch.float64)
    overlap = inf.get("overlap", 0.5)
    with torch.no_grad():
        for z0 in tile_starts(pz, tpz, overlap):
            for y0 in tile_starts(py, tpy, overlap):
                for x0 in tile_starts(px, tpx, overlap):
                    tile = x[z0:z0 + tpz, y0:y0 + tpy, x0:x0 + tpx]
                    acc = torch.zeros((classes, tpz, tpy, tpx), dtype=torch.float64)
                    for c in combos:
                        t = torch.flip(tile, c) if c else tile
                        out = net(t[:, None]).permute(1, 0, 2, 3) if two_d else net(t[None, None])[0]
                        acc += (torch.flip(out, [d + 1 for d in c]) if c else out).double() / len(combos)
                    total[:, z0:z0 + tpz, y0:y0 + tpy, x0:x0 + tpx] += acc * weight
                    weights[z0:z0 + tpz, y0:y0 + tpy, x0:x0 + tpx] += weight
    probs = torch.softmax(total / weights, 0)[:, :mz, :my, :mx]
    if a.timing:
        print(json.dumps({"seconds": time.perf_counter() - t0, "threads": torch.get_num_threads(), "tiles": len(tile_starts(pz, tpz, overlap)) * len(tile_starts(py, tpy, overlap)) * len(tile_starts(px, tpx, overlap))}))
    probs.float().numpy().astype("<f4").tofile(a.out)


if __name__ == "__main__":
    main()
