#!/usr/bin/env python3
"""The U-Net paper's experiment: the 2D U-Net trained on the ISBI 2012 EM membrane stack, k-fold cross-validated.

Ronneberger et al. (MICCAI 2015) trained on the challenge's 30 labelled 512x512 sections and scored on its 30
unlabelled test sections through the challenge server (warping error 0.000353, Rand error 0.0382, pixel error
0.0611). The test labels are not public, so we cross-validate on the 30 labelled sections: fold k holds out 6
consecutive sections (neighbours in the stack look alike, so random folds would leak), trains on the other 24, and
scores the 6. The folds' ONNX exports together are the shipped model (`models/isbi-em`, an ensemble of 5).

    /usr/bin/python3 training/train_isbi_em.py --data ../shared/data/isbi2012-em-membrane --out models/isbi-em

Seeded and resumable: each fold checkpoints to --checkpoints every 100 steps; rerunning the same command continues
where it stopped. Writes models/isbi-em/fold<k>.onnx and model.json, and training/reports/isbi-em.json.
"""
import argparse, json, os, platform, sys, time

import numpy as np
import scipy.ndimage as ndi
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainer import train  # noqa: E402
from unet import UNet, dice_ce_loss, elastic_deform, export_onnx  # noqa: E402

PAPER = {"warpingError": 0.000353, "randError": 0.0382, "pixelError": 0.0611}


def load(folder):
    """Sections 0..29 as float32 images and membrane masks (the labels are white cells on black membranes)."""
    images, membranes = [], []
    for i in range(30):
        images.append(np.asarray(Image.open(os.path.join(folder, "train", "image", f"{i}.png")).convert("L"), dtype=np.float32))
        membranes.append(np.asarray(Image.open(os.path.join(folder, "train", "label", f"{i}.png")).convert("L")) < 128)
    return np.stack(images), np.stack(membranes)


def zscore(stack):
    """As the engine's per-volume z-score: the statistics of the whole stack it is given."""
    return (stack - stack.mean()) / stack.std()


def batches(images, membranes, crop, batch, sigma):
    """Random crops with flips, quarter turns and the paper's elastic deformation (3x3 grid, `sigma` pixels)."""
    n, h, w = images.shape

    def make(rng):
        xs, ys = [], []
        for _ in range(batch):
            i, y0, x0 = rng.integers(n), rng.integers(h - crop + 1), rng.integers(w - crop + 1)
            a, b = images[i, y0:y0 + crop, x0:x0 + crop], membranes[i, y0:y0 + crop, x0:x0 + crop].astype(np.int64)
            k = rng.integers(4)
            a, b = np.rot90(a, k), np.rot90(b, k)
            if rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            a, b = elastic_deform(np.ascontiguousarray(a), np.ascontiguousarray(b), rng, grid=3, sigma=sigma)
            xs.append(a), ys.append(b)
        return torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ys))

    return make


def predict(models, images):
    """Membrane probability of each section: the models' logits averaged (as the engine averages folds), softmax."""
    with torch.no_grad():
        x = torch.from_numpy(images)[:, None]
        logits = sum(m(x) for m in models) / len(models)
        return torch.softmax(logits, 1)[:, 1].numpy()


def rand_error(pred_membrane, true_membrane):
    """The challenge's foreground-restricted Rand error (1 - Rand F-score; scikit-image's adapted_rand_error): cells
    are the 4-connected regions between membranes; pixels on true membranes are left out, the prediction's membrane
    pixels count as one region."""
    seg, _ = ndi.label(~pred_membrane)
    gt, _ = ndi.label(~true_membrane)
    keep = gt > 0
    s, g = seg[keep].astype(np.int64), gt[keep].astype(np.int64)
    n = s.size
    _, joint = np.unique(s * (g.max() + 1) + g, return_counts=True)
    sum_joint = float((joint.astype(np.float64) ** 2).sum() - n)
    sum_pred = float((np.bincount(s).astype(np.float64) ** 2).sum() - n)
    sum_true = float((np.bincount(g).astype(np.float64) ** 2).sum() - n)
    precision, recall = sum_joint / sum_pred, sum_joint / sum_true
    return 1 - 2 * precision * recall / (precision + recall)


def scores(prob, membranes):
    pred = prob > 0.5
    return {
        "pixelError": round(float((pred != membranes).mean()), 4),
        "randError": round(float(np.mean([rand_error(p, m) for p, m in zip(pred, membranes)])), 4),
    }


def manifest(folds, features):
    return {
        "id": "isbi-em",
        "version": "1.0.0",
        "name": "EM membranes (ISBI 2012)",
        "description": f"2D U-Net (Ronneberger et al. 2015; {features} base filters, 4 poolings, padded convolutions) trained on the ISBI 2012 "
                       f"EM stack, ensemble of its {folds} cross-validation folds. Sections wrapped as DICOM by training/em_to_dicom.py "
                       "(Secondary Capture, 4 nm pixels). Research use; see training/reports/isbi-em.json.",
        "modality": "OT",
        "dimensions": 2,
        "files": [f"fold{k}.onnx" for k in range(folds)],
        "input": {"name": "image", "layout": "NCYX", "spacing": [0.000004, 0.000004, 0.00005], "sizeMultiple": 16, "padding": "edge"},
        "normalization": {"kind": "zscore", "nonzeroMask": False},
        "output": {"name": "logits", "activation": "softmax"},
        "labels": [{
            "value": 1, "name": "Membrane", "color": [255, 64, 64],
            "category": {"code": "91723000", "scheme": "SCT", "meaning": "Anatomical Structure"},
            "type": {"code": "4421005", "scheme": "SCT", "meaning": "Cell structure"},
            "rtInterpretedType": "ORGAN",
        }],
        "outputs": ["seg"],
        "training": "/usr/bin/python3 training/train_isbi_em.py --data ../shared/data/isbi2012-em-membrane --out models/isbi-em",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/isbi2012-em-membrane")
    ap.add_argument("--out", default="models/isbi-em")
    ap.add_argument("--report", default="training/reports/isbi-em.json")
    ap.add_argument("--checkpoints", default="training/checkpoints/isbi-em")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--sigma", type=float, default=10.0, help="elastic displacement, pixels (the paper: 10)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=20121)
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.checkpoints, exist_ok=True)
    images, membranes = load(a.data)
    per = len(images) // a.folds
    report = {"command": " ".join(["/usr/bin/python3", "training/train_isbi_em.py"] + sys.argv[1:]),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} threads, torch {torch.__version__}",
              "settings": {k: v for k, v in vars(a).items() if k not in ("data", "out", "report", "checkpoints")},
              "paperTestSet": PAPER,
              "note": "The paper's figures are on the challenge's 30 test sections, whose labels are not public; ours are "
                      "cross-validation on the 30 training sections (6 consecutive sections held out per fold), with the "
                      "challenge's thick label membranes (not thinned). Not the same test, so not directly comparable.",
              "folds": []}
    models = []
    for k in range(a.folds):
        held = np.arange(k * per, (k + 1) * per)
        kept = np.setdiff1d(np.arange(len(images)), held)
        torch.manual_seed(a.seed + k)
        model = UNet(dims=2, features=a.features, depth=4)
        make = batches(zscore(images[kept]), membranes[kept], a.crop, a.batch, a.sigma)
        losses, seconds = train(model, make, dice_ce_loss, steps=a.steps, seed=a.seed + k, lr=a.lr,
                                checkpoint=os.path.join(a.checkpoints, f"fold{k}.pt"),
                                log=lambda s, k=k: print(f"fold {k}: {s}", flush=True))
        fold = {"fold": k, "heldOutSections": held.tolist(), **scores(predict([model], zscore(images[held])), membranes[held]),
                "finalLoss": round(float(np.mean(losses[-50:])), 4), "trainSeconds": round(seconds, 1)}
        print(json.dumps(fold), flush=True)
        report["folds"].append(fold)
        export_onnx(model, torch.zeros(1, 1, 64, 64), os.path.join(a.out, f"fold{k}.onnx"))
        models.append(model)
    for key in ("pixelError", "randError"):
        values = [f[key] for f in report["folds"]]
        report[f"mean{key[0].upper()}{key[1:]}"] = round(float(np.mean(values)), 4)
    with open(os.path.join(a.out, "model.json"), "w") as f:
        json.dump(manifest(a.folds, a.features), f, indent=2)
        f.write("\n")
    os.makedirs(os.path.dirname(a.report), exist_ok=True)
    with open(a.report, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(json.dumps({k: v for k, v in report.items() if k.startswith("mean")}))


if __name__ == "__main__":
    main()
