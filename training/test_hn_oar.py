#!/usr/bin/env python3
"""The head-and-neck recipe's checks on tiny synthetic data (test/integration/hn-oar-training.test.ts runs it and
asserts on the JSON it writes):

(a) partial labels: through a real (tiny) U-Net, a class absent from the target and NOT contoured gets exactly no
    gradient (its head weights and bias, its logits), and changing its logits does not change the loss; the same
    class contoured (and absent) does get a gradient, one that lowers its logits;
(b) the suspect-slice mask, built by the recipe's own patch sampler: changing the predictions on suspect slices does
    not change the loss, changing them on another slice does; on slices where the body outline is not trusted,
    swapping the background and External logits does not change the loss either;
(c) left-right mirroring swaps the parotid labels and their contoured flags;
(d) a run stopped halfway and resumed from its checkpoint ends with the same losses and weights as one that was
    not (the recipe's batches: augmentation, blanking, mirroring, both random generators).

    /usr/bin/python3 training/test_hn_oar.py --out DIR
"""
import argparse, functools, json, os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_hn_oar as R  # noqa: E402
from prior_correct import prior_corrected  # noqa: E402
from trainer import train as train_loop  # noqa: E402
from unet import UNet  # noqa: E402

SHAPE = (16, 24, 24)  # z, y, x


def phantom(seed, contoured_names):
    """A synthetic patient as load_patient returns it: a body with a few organs; only `contoured_names` labelled."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    hu = np.full(SHAPE, -1000.0)
    body = ((y - 12) / 9) ** 2 + ((x - 12) / 10) ** 2 <= 1
    hu[body] = 40 + rng.normal(0, 10, body.sum())
    label = np.where(body, R.EXTERNAL, 0).astype(np.uint8)
    organs = {"Brainstem": (1, (4, 12, 12)), "RightParotid": (3, (8, 12, 6)), "LeftParotid": (4, (8, 12, 18)), "Mandible": (7, (10, 7, 12))}
    contoured = np.zeros(R.NCLASS, bool)
    contoured[0] = contoured[R.EXTERNAL] = True
    for name, (value, (cz, cy, cx)) in organs.items():
        blob = ((z - cz) / 2.5) ** 2 + ((y - cy) / 2.5) ** 2 + ((x - cx) / 2.5) ** 2 <= 1
        hu[blob] += 60 * value
        if name in contoured_names:
            label[blob] = value
            contoured[value] = True
    weight = np.ones(SHAPE[0], bool)
    weight[[2, 3]] = False  # suspect slices
    trusted = weight.copy()
    trusted[[12, 13]] = False  # incomplete CT: the outline is not a target there
    return {"name": f"phantom{seed}", "hu": hu.astype(np.int16), "label": label, "sliceWeight": weight, "sliceTrusted": trusted,
            "contoured": contoured, "spacing": R.SPACING_XYZ}


def whole(p):
    """The whole phantom as one batch of the recipe's sampler, without augmentation."""
    s = R.sample_patch(p, np.random.default_rng(0), SHAPE, augment=False, centre=[(n - 1) / 2 for n in SHAPE])
    x = torch.from_numpy(s[0])[None, None]
    y = (torch.from_numpy(s[1].astype(np.int64))[None], torch.from_numpy(s[2].astype(np.float32))[None],
         torch.from_numpy(s[3].astype(np.float32))[None], torch.from_numpy(s[4])[None])
    return x, y, s


def partial_labels(organ_weight=1.0):
    """(a) Class 6 (Larynx) is absent from the phantom. Unknown: no gradient. Contoured: a gradient. With
    `organ_weight` as the loss's (phase 4's organ-weighted cross-entropy)."""
    loss_fn = functools.partial(R.partial_label_loss, organ_weight=organ_weight)
    out = {}
    p = phantom(1, ["Brainstem", "RightParotid", "LeftParotid", "Mandible"])
    x, y, _ = whole(p)
    for case in ("unknown", "contoured"):
        contoured = y[3].clone()
        contoured[0, 6] = case == "contoured"
        target = (y[0], y[1], y[2], contoured)
        torch.manual_seed(0)
        model = UNet(dims=3, classes=R.NCLASS, features=4, depth=2)
        # a few training steps first, so the check is on a network that has moved, not at its initialisation
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(3):
            opt.zero_grad()
            loss_fn(model(x), target).backward()
            opt.step()
        opt.zero_grad()
        logits = model(x)
        logits.retain_grad()
        loss = loss_fn(logits, target)
        loss.backward()
        g = logits.grad[:, 6]
        with torch.no_grad():
            changed = logits.clone()
            changed[:, 6] += torch.randn_like(changed[:, 6]) * 3 + 2
            loss_changed = float(loss_fn(changed, target))
        out[case] = {
            "loss": float(loss),
            "lossWithClassLogitsChanged": loss_changed,
            "maxAbsLogitGrad": float(g.abs().max()),
            "meanLogitGrad": float(g.mean()),  # > 0: gradient descent lowers the class's logits (pushes it to absent)
            "maxAbsHeadGrad": float(max(model.head.weight.grad[6].abs().max(), model.head.bias.grad[6].abs())),
        }
    return out


def suspect_mask():
    """(b) The sampler's weight is 0 on suspect slices 2 and 3, and the outline untrusted on slices 12 and 13."""
    p = phantom(2, ["Brainstem", "RightParotid", "LeftParotid", "Mandible"])
    x, y, s = whole(p)
    torch.manual_seed(0)
    logits = torch.randn(1, R.NCLASS, *SHAPE)
    base = float(R.partial_label_loss(logits, y))
    def changed(zs, fn):
        c = logits.clone()
        for k in zs:
            fn(c, k)
        return float(R.partial_label_loss(c, y))
    def scramble(c, k):
        c[:, :, k] = torch.randn_like(c[:, :, k]) * 5
    def swap_bg_external(c, k):
        c[:, [0, R.EXTERNAL], k] = c[:, [R.EXTERNAL, 0], k]
    return {
        "weightPerSlice": [int(s[2][k].max()) for k in range(SHAPE[0])],
        "trustedPerSlice": [int(s[3][k].max()) for k in range(SHAPE[0])],
        "loss": base,
        "suspectScrambled": changed([2, 3], scramble),
        "otherScrambled": changed([6], scramble),
        "untrustedBgExternalSwapped": changed([12, 13], swap_bg_external),
        "trustedBgExternalSwapped": changed([8], swap_bg_external),
    }


def mirroring():
    """(c) Mirrored patches: right parotid voxels become left ones, and the contoured flags follow."""
    p = phantom(3, ["RightParotid", "Brainstem"])  # the left parotid is not contoured
    rng = np.random.default_rng(5)
    seen = []
    for _ in range(12):
        s = R.sample_patch(p, rng, SHAPE, augment=True, centre=[(n - 1) / 2 for n in SHAPE])
        right, left = int((s[1] == 3).sum()), int((s[1] == 4).sum())
        parotid = (s[1] == 3) | (s[1] == 4)
        # x increases toward the patient's left: a right parotid lies at x < 12, a left one at x > 12
        seen.append({"right": right, "left": left, "contouredRight": bool(s[4][3]), "contouredLeft": bool(s[4][4]),
                     "meanX": float(np.nonzero(parotid)[2].mean()) if parotid.any() else None})
    return seen


def resume(folder, steps=6):
    """(d) Resume: the recipe's batches and loss through training/trainer.py."""
    patients = [phantom(10 + i, ["Brainstem", "RightParotid", "LeftParotid"] if i else ["Mandible", "LeftParotid"]) for i in range(3)]
    make_batch = R.make_batch_fn(patients, 2, patch=(16, 16, 16))

    def run(checkpoint=None, stop_after=None):
        torch.manual_seed(7)
        model = UNet(dims=3, classes=R.NCLASS, features=4, depth=2)
        losses, _ = train_loop(model, make_batch, R.partial_label_loss, steps=steps, seed=7, lr=1e-2, checkpoint=checkpoint,
                               every=100, log=lambda _: None, stop_after=stop_after)
        return model, losses

    whole_model, whole_losses = run()
    checkpoint = os.path.join(folder, "hn-resume.pt")
    if os.path.exists(checkpoint):
        os.remove(checkpoint)
    _, first = run(checkpoint, stop_after=steps // 2)
    resumed, resumed_losses = run(checkpoint)
    same = all(torch.equal(a, b) for a, b in zip(whole_model.state_dict().values(), resumed.state_dict().values()))
    return {"steps": steps, "stoppedAfter": len(first), "losses": whole_losses, "resumedLosses": resumed_losses,
            "sameWeights": same}


def sampling(batches=200):
    """(e) Organ-first sampling: among six patients only one contoured the mandible; count the patches that hold
    mandible, with each sampler (8-voxel patches, no augmentation)."""
    patients = [phantom(20 + i, ["Brainstem", "RightParotid", "LeftParotid"] + (["Mandible"] if i == 0 else [])) for i in range(6)]
    counts = {}
    for mode in ("patient", "organ"):
        make_batch = R.make_batch_fn(patients, 1, patch=(8, 8, 8), augment=False, sampling=mode)
        rng = np.random.default_rng(3)
        counts[mode] = sum(int((make_batch(rng)[1][0] == 7).any()) for _ in range(batches))
    return {"batches": batches, "patchesWithMandible": counts}


def prior_correction(organ_weight=10.0):
    """(f) prior_correct.py: the corrected network's probabilities are the original's divided by the class weights
    (organs by organ_weight, background and External by 1) and renormalised; largest difference over a random input."""
    torch.manual_seed(5)
    model = R.build_model().eval()
    corrected = R.build_model().eval()
    corrected.load_state_dict(prior_corrected(model.state_dict(), organ_weight))
    x = torch.randn(1, 1, 8, 16, 16)
    with torch.no_grad():
        p, q = torch.softmax(model(x), 1), torch.softmax(corrected(x), 1)
    w = torch.ones(R.NCLASS)
    w[1:R.EXTERNAL] = organ_weight
    expected = p / w.view(1, -1, 1, 1, 1)
    expected = expected / expected.sum(1, keepdim=True)
    return {"organWeight": organ_weight, "maxDiff": float((q - expected).abs().max()), "maxChange": float((q - p).abs().max())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)
    report = {"partialLabels": partial_labels(), "partialLabelsOrganWeighted": partial_labels(10.0), "suspect": suspect_mask(), "mirroring": mirroring(), "resume": resume(a.out), "sampling": sampling(), "priorCorrection": prior_correction()}
    with open(os.path.join(a.out, "hn-oar-test.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
