#!/usr/bin/env python3
"""Inputs for test/integration/norm-export.test.ts: a seeded 3D U-Net (16 features, 3 poolings) exported twice, with
training/unet.py's export_onnx (two-level instance normalisation) and as torch.onnx.export writes it (onnxruntime's
InstanceNormalization), one CT-like 128³ tile (an ellipse of soft tissue in air, normalised as CT), and PyTorch's
float32 logits for it.

    /usr/bin/python3 training/norm_export_check.py --out DIR   # DIR/{two_level,plain}.onnx, input.f32, logits.f32
"""
import argparse, os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet import UNet, export_onnx  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.manual_seed(0)
    net = UNet(dims=3, features=16, depth=3).eval()
    example = torch.zeros(1, 1, 32, 32, 32)
    export_onnx(net, example, os.path.join(a.out, "two_level.onnx"))
    spatial = {2: "z", 3: "y", 4: "x"}
    torch.onnx.export(net, example, os.path.join(a.out, "plain.onnx"), opset_version=17, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "n", **spatial}, "logits": {0: "n", **spatial}})
    n = 128
    z, y, x = np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")
    body = ((x - 40) / 60) ** 2 + ((y - 64) / 40) ** 2 <= 1
    tile = np.where(body, 0.04 + ((x * 7 + y * 13 + z * 3) % 40) / 1000, -1.0).astype("<f4")
    tile.tofile(os.path.join(a.out, "input.f32"))
    torch.set_num_threads(os.cpu_count() or 1)
    with torch.no_grad():
        logits = net(torch.from_numpy(tile)[None, None])
    logits.numpy().astype("<f4").tofile(os.path.join(a.out, "logits.f32"))


if __name__ == "__main__":
    main()
