#!/usr/bin/env python3
"""Exports an hn-oar checkpoint (training/train_hn_oar.py, a run's interim one too) to ONNX for models/hn-oar:
opset 17, input "image" [n, 1, z, y, x] and output "logits" [n, 9, z, y, x] with dynamic batch and spatial axes
(training/unet.py's export_onnx). With --check DIR it also writes a random input of another size than the example
and PyTorch's logits for it (float32, raw), so onnxruntime can be compared with PyTorch.

    /usr/bin/python3 training/export_hn_oar.py --checkpoint training/checkpoints/hn-oar/last.pt --out models/hn-oar/model.onnx
"""
import argparse, json, os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_hn_oar as R  # noqa: E402
from unet import export_onnx  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default="training/checkpoints/hn-oar/last.pt")
    ap.add_argument("--out", default="models/hn-oar/model.onnx")
    ap.add_argument("--check", default=None, help="folder for a check input and PyTorch's output")
    a = ap.parse_args()
    state = torch.load(a.checkpoint, map_location="cpu")
    model = R.build_model()
    model.load_state_dict(state["model"] if "model" in state else state)
    model.eval()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    export_onnx(model, torch.zeros((1, 1) + R.PATCH), a.out)
    meta = {"checkpoint": a.checkpoint, "step": state.get("step"), "steps": state.get("steps"), "onnx": a.out}
    if a.check:
        os.makedirs(a.check, exist_ok=True)
        x = torch.from_numpy(np.random.default_rng(1).normal(0, 1, size=(1, 1, 24, 40, 56)).astype(np.float32))
        with torch.no_grad():
            y = model(x).numpy()
        x.numpy().astype("<f4").tofile(os.path.join(a.check, "input.f32"))
        y.astype("<f4").tofile(os.path.join(a.check, "output.f32"))
        meta.update({"input": list(x.shape), "output": list(y.shape)})
        with open(os.path.join(a.check, "check.json"), "w") as f:
            json.dump(meta, f)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
