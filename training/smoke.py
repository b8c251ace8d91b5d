#!/usr/bin/env python3
"""A few training steps of each network on tiny seeded data, then ONNX export: what the test suite runs
(test/integration/training.test.ts, parity.test.ts). Writes, per network, model.onnx, model.pt (its weights), the input
it was checked on and PyTorch's output for it (raw float32), and smoke.json with architectures, shapes and losses.

    /usr/bin/python3 training/smoke.py --out DIR [--steps 4] [--seed 0]
"""
import argparse, json, os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainer import train as train_loop  # noqa: E402
from unet import UNet, VNet, dice_ce_loss, elastic_deform, export_onnx, soft_dice_loss  # noqa: E402


def build(arch):
    """A network from its description in smoke.json (what reference_inference.py rebuilds to load model.pt)."""
    if arch["kind"] == "vnet":
        return VNet(features=arch["features"], depth=arch["depth"])
    return UNet(dims=arch["dims"], features=arch["features"], depth=arch["depth"])


def train(name, model, shape, loss_fn, steps, seed, rng):
    torch.manual_seed(seed)
    # a bright blob on noise: learnable in a few steps
    image = rng.normal(0, 0.3, size=shape).astype(np.float32)
    centre = [n // 2 for n in shape]
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    blob = sum(((g - c) / (n / 4)) ** 2 for g, c, n in zip(grid, centre, shape)) <= 1
    image[blob] += 1.0
    label = blob.astype(np.int64)
    image, label = elastic_deform(image, label, rng, sigma=2.0)
    x = torch.from_numpy(image)[None, None]
    y = torch.from_numpy(label)[None]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return x, losses


def resume_check(seed, steps, folder):
    """The shared training loop (trainer.py) stopped halfway and resumed from its checkpoint ends where an
    uninterrupted run ends: the same losses and the same weights. Batches are random crops with flips and elastic
    deformation, so the random generators' state has to come back too."""
    image = np.random.default_rng(seed).normal(0, 1, size=(48, 48)).astype(np.float32)
    label = (image > 0.5).astype(np.int64)

    def make_batch(rng):
        y0, x0 = rng.integers(0, 17, size=2)
        a, b = image[y0:y0 + 32, x0:x0 + 32], label[y0:y0 + 32, x0:x0 + 32]
        if rng.random() < 0.5:
            a, b = a[:, ::-1], b[:, ::-1]
        a, b = elastic_deform(np.ascontiguousarray(a), np.ascontiguousarray(b), rng, sigma=2.0)
        return torch.from_numpy(a)[None, None], torch.from_numpy(b)[None]

    def run(checkpoint=None, stop_after=None):
        torch.manual_seed(seed)
        model = UNet(dims=2, features=4, depth=2)
        losses, _ = train_loop(model, make_batch, dice_ce_loss, steps=steps, seed=seed, lr=1e-2, checkpoint=checkpoint,
                               every=2, log=lambda _: None, stop_after=stop_after)
        return model, losses

    whole, whole_losses = run()
    checkpoint = os.path.join(folder, "resume.pt")
    _, first = run(checkpoint, stop_after=steps // 2)
    resumed, resumed_losses = run(checkpoint)
    same_weights = all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
    return {"steps": steps, "stoppedAfter": len(first), "losses": whole_losses, "resumedLosses": resumed_losses,
            "identical": whole_losses == resumed_losses and same_weights}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(2)
    report = {}
    nets = [
        ("unet2d", {"kind": "unet", "dims": 2, "features": 4, "depth": 2}, (32, 32), dice_ce_loss),
        ("unet3d", {"kind": "unet", "dims": 3, "features": 4, "depth": 2}, (16, 16, 16), dice_ce_loss),
        ("vnet", {"kind": "vnet", "features": 4, "depth": 2}, (16, 16, 16), soft_dice_loss),
    ]
    for name, arch, shape, loss_fn in nets:
        make = lambda: build(arch)
        runs = []
        for _ in range(2):  # twice with the same seed: training is reproducible
            torch.manual_seed(a.seed)
            model = make()
            x, losses = train(name, model, shape, loss_fn, a.steps, a.seed, np.random.default_rng(a.seed))
            runs.append((model, x, losses))
        model, x, losses = runs[0]
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        export_onnx(model, x, os.path.join(d, "model.onnx"))
        torch.save(model.state_dict(), os.path.join(d, "model.pt"))
        # check on an input of another size than the example, to exercise the dynamic axes
        check = torch.from_numpy(np.random.default_rng(a.seed + 1).normal(0, 1, size=(1, 1) + tuple(n * 2 for n in shape)).astype(np.float32))
        with torch.no_grad():
            out = model(check).numpy()
        check.numpy().astype("<f4").tofile(os.path.join(d, "input.f32"))
        out.astype("<f4").tofile(os.path.join(d, "output.f32"))
        report[name] = {"arch": arch, "input": list(check.shape), "output": list(out.shape), "losses": losses, "reproducible": runs[0][2] == runs[1][2]}
    report["resume"] = resume_check(a.seed, a.steps, a.out)
    with open(os.path.join(a.out, "smoke.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
