#!/usr/bin/env python3
"""The network of `npm run bench:pytorch` (bench/pytorch.ts): a 3D U-Net with 16 base features and 3 poolings,
seeded weights, saved as ONNX (for the engine) and as weights (for training/reference_inference.py --timing, the
PyTorch side, which runs the same algorithm over the same volume).

    /usr/bin/python3 training/bench_torch.py --out DIR     # DIR/bench/model.onnx, DIR/bench/model.pt, DIR/smoke.json
"""
import argparse, json, os, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet import UNet, export_onnx  # noqa: E402

ARCH = {"kind": "unet", "dims": 3, "features": 16, "depth": 3}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    a = p.parse_args()
    os.makedirs(os.path.join(a.out, "bench"), exist_ok=True)
    torch.manual_seed(0)
    net = UNet(**{k: v for k, v in ARCH.items() if k != "kind"})
    net.eval()
    export_onnx(net, torch.zeros(1, 1, 32, 32, 32), os.path.join(a.out, "bench", "model.onnx"))
    torch.save(net.state_dict(), os.path.join(a.out, "bench", "model.pt"))
    json.dump({"bench": {"arch": ARCH}}, open(os.path.join(a.out, "smoke.json"), "w"))
    json.dump({"flopsPer128Tile": conv_flops(net, (128, 128, 128))}, open(os.path.join(a.out, "bench", "flops.json"), "w"))


def conv_flops(net, patch):
    """Multiply-adds × 2 of every convolution for one tile (the network's arithmetic; normalisation, activations,
    pooling and upsampling are a few operations per voxel and left out), counted with forward hooks on a meta tensor
    so nothing is computed."""
    total = [0]

    def hook(m, inp, out):
        k = 1
        for s in m.kernel_size:
            k *= s
        total[0] += 2 * out.numel() * (m.in_channels // m.groups) * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.Conv2d))]
    with torch.no_grad():
        net(torch.zeros(1, 1, *patch))
    for h in hs:
        h.remove()
    return total[0]


if __name__ == "__main__":
    main()
