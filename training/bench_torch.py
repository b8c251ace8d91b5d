#!/usr/bin/env python3
"""The network of `npm run bench:pytorch` (bench/pytorch.ts): a 3D U-Net with 16 base features and 3 poolings,
seeded weights, saved as ONNX (for the engine) and as weights (for training/reference_inference.py --timing, the
PyTorch side, which runs the same algorithm over the same volume).

    /usr/bin/python3 training/bench_torch.py --out DIR     # DIR/bench/model.onnx, DIR/bench/model.pt, DIR/smoke.json

DIR/bench/before.onnx is the same network as exported before issue 19's changes, for the benchmark's before/after
row: onnxruntime's own InstanceNormalization (whose float32 channel sums put the logits 9e-3 off) and each
up-convolution's nearest upsampling before its 1x1 convolution (8x the convolution's work, twice the upsampling's).
"""
import argparse, json, os, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch.nn.functional as F  # noqa: E402

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
    before = UpsampleFirstUNet(**{k: v for k, v in ARCH.items() if k != "kind"})
    before.load_state_dict(net.state_dict())
    before.eval()
    spatial = {2: "z", 3: "y", 4: "x"}
    torch.onnx.export(before, torch.zeros(1, 1, 32, 32, 32), os.path.join(a.out, "bench", "before.onnx"), opset_version=17,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n", **spatial}, "logits": {0: "n", **spatial}})
    json.dump({"bench": {"arch": ARCH}}, open(os.path.join(a.out, "smoke.json"), "w"))
    json.dump({"flopsPer128Tile": conv_flops(net, (128, 128, 128))}, open(os.path.join(a.out, "bench", "flops.json"), "w"))


class UpsampleFirstUNet(UNet):
    """training/unet.py's UNet as it ran before: upsampling, then the 1x1 convolution (the same function)."""

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool3d(x, 2))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            x = self.reduce[i](F.interpolate(x, scale_factor=2.0, mode="nearest"))
            x = self.up[i](torch.cat([skips[i], x], 1))
        return self.head(x)


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
