#!/usr/bin/env python3
"""Train the small 3D U-Net that outlines the body on CT (Delineate's demo model, `models/ct-body`).

Silver-standard labels: body = HU > -500, holes filled slice by slice, largest 3D component kept
(a classical method; the network learns to reproduce it, which is what makes it a meaningful model
on real CT rather than random weights). Training data: real CT from ../shared/data, resampled to
4 mm isotropic; the abdomen series (totalseg-ct-abdomen-j2k) is held out for evaluation.

Run with Debian's python3-torch, python3-nibabel, python3-scipy:
    /usr/bin/python3 training/train_ct_body.py --data ../shared/data --out models/ct-body
"""
import argparse, json, os, random, time
import numpy as np
import nibabel as nib
import scipy.ndimage as ndi
import torch
import torch.nn as nn
import torch.nn.functional as F

SPACING = 4.0  # mm, isotropic model grid
WINDOW = (-1000.0, 1000.0)  # HU clip; then (x - MEAN) / STD
MEAN, STD = 0.0, 1000.0

TRAIN = [
    "dcmqa-ct-philips-tilt/ref-dcm2niix-local/1F_STEREOTAXIS_Head_201.nii.gz",
    "dcmqa-ct-ge-tilt/ref-dcm2niix-local/_2.nii.gz",
    "totalseg-nifti-ct-mr-seg/example_ct.nii.gz",
]
HELD_OUT = ["totalseg-ct-abdomen-j2k/ref-dcm2niix-local/FDG_TK_KM_0.nii.gz"]


def body_label(hu: np.ndarray) -> np.ndarray:
    """The classical body outline: threshold, fill holes per axial slice, keep the largest component."""
    mask = hu > -500
    for z in range(mask.shape[0]):
        mask[z] = ndi.binary_fill_holes(mask[z])
    return largest_component(mask)


def largest_component(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n <= 1:
        return mask
    sizes = ndi.sum(mask, lab, range(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def load(path: str):
    img = nib.load(path)
    # NIfTI arrays are (x, y, z); the engine's tensors are (z, y, x), x fastest, like DICOM pixel data.
    hu = np.ascontiguousarray(np.asarray(img.get_fdata(), dtype=np.float32).transpose(2, 1, 0))
    zooms = tuple(reversed(img.header.get_zooms()[:3]))
    return hu, zooms


def to_model_grid(arr: np.ndarray, zooms, order: int) -> np.ndarray:
    factors = [z / SPACING for z in zooms]
    return ndi.zoom(arr, factors, order=order)


def normalise(hu: np.ndarray) -> np.ndarray:
    return (np.clip(hu, *WINDOW) - MEAN) / STD


def phantom(rng: np.random.Generator):
    """An ellipse of soft tissue in air with lungs and spine, the shape of the demo's own phantom, lying on
    foam pads and under a blanket (HU -900..-700, outside the body) so that the network learns that
    lung-like density outside the body outline is not body (real CT has mattresses, cushions, blankets)."""
    nx, ny, nz = 128, 128, 40
    y, x = np.meshgrid(np.arange(ny) - ny / 2, np.arange(nx) - nx / 2, indexing="ij")
    a, b = rng.uniform(30, 55), rng.uniform(22, 40)
    cx, cy = rng.uniform(-8, 8), rng.uniform(-8, 8)
    body = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1
    hu = np.full((ny, nx), -1000.0, np.float32)
    shell = ((x - cx) / (a + rng.uniform(3, 10))) ** 2 + ((y - cy) / (b + rng.uniform(3, 10))) ** 2 <= 1
    hu[shell] = rng.uniform(-900, -700)  # blanket / cushion hugging the body
    pad_bottom = cy + b + rng.uniform(3, 12)
    pad = (y > cy + b - 2) & (y < pad_bottom) & (np.abs(x - cx) < a + rng.uniform(0, 20))
    hu[pad & ~body] = rng.uniform(-980, -750)  # foam mattress under the patient
    if rng.random() < 0.8:  # the table: a thin curved shell below the mattress, separate from the body
        depth = pad_bottom + rng.uniform(0, 3)
        curve = depth + ((x - cx) / (a + 30)) ** 2 * rng.uniform(0, 12)
        hu[(y >= curve) & (y < curve + rng.uniform(1, 2.5)) & (np.abs(x - cx) < a + 25)] = rng.uniform(-100, 400)
    hu[body] = rng.uniform(-120, 60)
    for s in (-1, 1):
        lung = ((x - cx - s * a * 0.45) / (a * 0.3)) ** 2 + ((y - cy) / (b * 0.55)) ** 2 <= 1
        if rng.random() < 0.7:
            hu[lung] = rng.uniform(-900, -750)
    hu[((x - cx) / 6) ** 2 + ((y - cy - b * 0.6) / 6) ** 2 <= 1] = 700
    vol = np.repeat(hu[None], nz, axis=0) + rng.normal(0, 15, (nz, ny, nx)).astype(np.float32)
    return vol, (SPACING, SPACING, SPACING)


class Block(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(
            nn.Conv3d(cin, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01, inplace=True),
            nn.Conv3d(cout, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01, inplace=True),
        )


class UNet3D(nn.Module):
    """3D U-Net (Cicek et al. 2016) with two poolings. Upsampling + convolution instead of
    ConvTranspose3d, so the ONNX export also runs on onnxruntime's WebGPU provider."""

    def __init__(self, f=8, classes=2):
        super().__init__()
        self.e1, self.e2, self.e3 = Block(1, f), Block(f, 2 * f), Block(2 * f, 4 * f)
        self.u2, self.d2 = nn.Conv3d(4 * f, 2 * f, 1), Block(4 * f, 2 * f)
        self.u1, self.d1 = nn.Conv3d(2 * f, f, 1), Block(2 * f, f)
        self.head = nn.Conv3d(f, classes, 1)

    def forward(self, x):
        s1 = self.e1(x)
        s2 = self.e2(F.max_pool3d(s1, 2))
        b = self.e3(F.max_pool3d(s2, 2))
        x = self.d2(torch.cat([s2, self.u2(F.interpolate(b, scale_factor=2.0, mode="nearest"))], 1))
        x = self.d1(torch.cat([s1, self.u1(F.interpolate(x, scale_factor=2.0, mode="nearest"))], 1))
        return self.head(x)


def pad_to(a: np.ndarray, multiple: int):
    """Edge replication, as the engine pads: a scan cut off mid-body continues, it does not end in air."""
    pads = [(0, (-s) % multiple) for s in a.shape]
    return np.pad(a, pads, mode="edge"), a.shape


def crop(img, lab, size, rng):
    padded = [max(0, s - d) for s, d in zip(size, img.shape)]
    if any(padded):
        img = np.pad(img, [(0, p) for p in padded], mode="edge")
        lab = np.pad(lab, [(0, p) for p in padded], mode="edge")
    o = [rng.integers(0, d - s + 1) for s, d in zip(size, img.shape)]
    sl = tuple(slice(a, a + s) for a, s in zip(o, size))
    return img[sl], lab[sl]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(1, a.sum() + b.sum()))


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: float):
    """Symmetric surface distances in mm between two masks on the model grid: mean (ASSD) and 95th percentile (HD95).
    A surface voxel is one with a 6-neighbour outside its mask; each surface's distances to the other are measured
    with the exact Euclidean distance transform."""
    def surface(m):
        return m & ~ndi.binary_erosion(m, structure=ndi.generate_binary_structure(3, 1), border_value=0)
    sa, sb = surface(a), surface(b)
    to_b = ndi.distance_transform_edt(~sb, sampling=spacing)[sa]
    to_a = ndi.distance_transform_edt(~sa, sampling=spacing)[sb]
    both = np.concatenate([to_b, to_a])
    return round(float(both.mean()), 2), round(float(np.percentile(both, 95)), 2)


def predict(model, img):
    p, shape = pad_to(img, 4)
    with torch.no_grad():
        out = model(torch.from_numpy(p)[None, None].float())
    return out.argmax(1)[0].numpy()[: shape[0], : shape[1], : shape[2]].astype(bool)


def evaluate(model, cases, args, train_s):
    """Dice of the raw network output and of the output as Delineate ships it (largest component kept,
    manifest postprocessing.keepLargestComponent), against the classical label, on the 4 mm grid; for held-out
    series also the shipped output's surface distances (mean and 95th percentile, mm)."""
    report = {"model": "ct-body", "labelMethod": "HU > -500, holes filled per axial slice, largest 3D component",
              "spacingMm": SPACING, "steps": args.steps, "seed": args.seed, "trainSeconds": round(train_s, 1),
              "hardware": f"{os.cpu_count()} CPU cores, torch {torch.__version__}", "train": {}, "heldOut": {}}
    for name, img, lab in cases:
        p = predict(model, img)
        report["train"][name] = {"dice": round(dice(p, lab), 4), "diceShipped": round(dice(largest_component(p), lab), 4)}
    for rel in HELD_OUT:
        hu, zooms = load(os.path.join(args.data, rel))
        img = normalise(to_model_grid(hu, zooms, 1))
        lab = to_model_grid(body_label(hu).astype(np.float32), zooms, 1) > 0.5
        p = predict(model, img)
        assd, hd95 = surface_distances(largest_component(p), lab, SPACING)
        report["heldOut"][rel] = {"dice": round(dice(p, lab), 4), "diceShipped": round(dice(largest_component(p), lab), 4),
                                  "assdMmShipped": assd, "hd95MmShipped": hd95, "grid": list(img.shape)}
    return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="models/ct-body")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--evaluate-only", action="store_true", help="re-evaluate training/ct-body.pt without training")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(os.cpu_count() or 1)

    cases = []
    for rel in TRAIN:
        hu, zooms = load(os.path.join(args.data, rel))
        cases.append((rel, normalise(to_model_grid(hu, zooms, 1)), to_model_grid(body_label(hu).astype(np.float32), zooms, 1) > 0.5))
    for i in range(8):
        hu, zooms = phantom(rng)
        cases.append((f"phantom-{i}", normalise(hu), body_label(hu)))
    for name, img, lab in cases:
        print(f"train case {name}: grid {img.shape}, body fraction {lab.mean():.3f}")

    model = UNet3D()
    if args.evaluate_only:
        model.load_state_dict(torch.load(os.path.join("training", "ct-body.pt")))
        model.eval()
        previous = json.load(open(os.path.join("training", "reports", "ct-body.json")))
        report = evaluate(model, cases, args, previous["trainSeconds"])
        print(json.dumps(report, indent=2))
        with open(os.path.join("training", "reports", "ct-body.json"), "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        return
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps)
    size = (16, 64, 64)  # (z, y, x)
    t0 = time.time()
    for step in range(args.steps):
        xs, ys = [], []
        for _ in range(4):
            _, img, lab = cases[rng.integers(len(cases))]
            a, b = crop(img, lab, size, rng)
            for ax in (0, 1, 2):
                if rng.random() < 0.5:
                    a, b = np.flip(a, ax), np.flip(b, ax)
            if rng.random() < 0.5:  # swap the in-plane axes
                a, b = a.transpose(0, 2, 1), b.transpose(0, 2, 1)
            xs.append(np.ascontiguousarray(a)), ys.append(np.ascontiguousarray(b))
        x = torch.from_numpy(np.stack(xs))[:, None].float()
        y = torch.from_numpy(np.stack(ys)).long()
        logits = model(x)
        prob = logits.softmax(1)[:, 1]
        fg = (y == 1).float()
        soft_dice = 1 - (2 * (prob * fg).sum() + 1) / (prob.sum() + fg.sum() + 1)
        loss = F.cross_entropy(logits, y) + soft_dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    train_s = time.time() - t0

    model.eval()
    report = evaluate(model, cases, args, train_s)
    print(json.dumps(report, indent=2))

    os.makedirs(args.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join("training", "ct-body.pt"))
    dummy = torch.zeros(1, 1, 16, 32, 32)
    torch.onnx.export(model, dummy, os.path.join(args.out, "model.onnx"), opset_version=17,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n", 2: "z", 3: "y", 4: "x"}, "logits": {0: "n", 2: "z", 3: "y", 4: "x"}})
    with open(os.path.join("training", "reports", "ct-body.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
