#!/usr/bin/env python3
"""Scores an hn-oar checkpoint (training/train_hn_oar.py) on OpenKBP patients: per organ Dice, 95th-percentile
Hausdorff distance and mean surface distance in mm, only on organs the patient's clinical plan contoured and only on
slices that are not suspect. Any checkpoint will do (an interim one of a run in progress too).

    /usr/bin/python3 training/evaluate_hn_oar.py --checkpoint training/checkpoints/hn-oar/last.pt \\
        --data ../shared/data/openkbp-hn-oar --split validation --out training/reports/hn-oar.json

Inference as Delineate's engine does it (training/reference_inference.py): the CT resampled trilinearly (half-pixel
centres) from the patient's spacing to the model's (3.906 x 3.906 x 2.5 mm), HU clipped and normalised, edge-padded
to a multiple of 8, tiled with nnU-Net's placement (overlap 0.5, Gaussian importance), softmax; the probabilities
resampled trilinearly back to the patient's 128^3 grid and the class with the highest taken. No test-time mirroring
(mirroring left-right would have to swap the parotids). No post-processing.

Metrics, per patient and organ, on the patient's own grid (the clinical contours' grid), with A the model's mask
and B the clinical mask, both restricted to the non-suspect slices (suspect slices set to empty in both):
- Dice = 2 |A n B| / (|A| + |B|), voxels counted.
- Surface of a mask: its voxels with at least one of their 6 face neighbours outside the mask (outside the grid or
  on a suspect slice counts as outside). Directed distances A->B: for each surface voxel centre of A, the Euclidean
  distance in mm (the patient's anisotropic spacing) to the nearest surface voxel centre of B (exact distance
  transform, scipy.ndimage.distance_transform_edt).
- HD95 = max(95th percentile of A->B, 95th percentile of B->A) (as MONAI's compute_hausdorff_distance with
  percentile 95).
- MSD (mean surface distance, symmetric) = the mean of A->B and B->A pooled (average symmetric surface distance).
- An organ the model missed entirely (A empty) gets Dice 0 and no distances (counted in "missed"). An organ whose
  clinical mask lies wholly on suspect slices is not scored for that patient. Organs not contoured are not scored:
  whatever the model outlines there is not a false positive.
Also External against the classical body outline (train_hn_oar.body_outline) on the slices where the outline is
trusted (train_hn_oar.trusted_body_slices), Dice only.
"""
import argparse, json, os, platform, sys, time

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_hn_oar as R  # noqa: E402
from reference_inference import gaussian, half_up, tile_starts  # noqa: E402

ORGANS = [(c, R.CLASSES[c]) for c in range(1, R.EXTERNAL)]
DATA_NAME = {v: k for k, v in R.DATA_NAMES.items()}  # model class -> OpenKBP structure name


def load_model(path):
    state = torch.load(path, map_location="cpu")
    model = R.build_model()
    model.load_state_dict(state["model"] if "model" in state else state)
    model.eval()
    return model, {k: state[k] for k in ("step", "steps", "seed", "seconds") if k in state}


def predict(model, hu_ijk, spacing_ijk, patch_zyx=R.PATCH, overlap=0.5):
    """Class probabilities [C, k, j, i]... as the engine computes them; returns labels on the patient's grid [z, y, x]."""
    vol = torch.from_numpy(np.ascontiguousarray(np.asarray(hu_ijk, dtype=np.float32).transpose(2, 1, 0)))  # [z, y, x]
    nz, ny, nx = vol.shape
    sx, sy, sz = spacing_ijk
    tx, ty, tz = R.SPACING_XYZ
    mz, my, mx = max(1, half_up(nz * sz / tz)), max(1, half_up(ny * sy / ty)), max(1, half_up(nx * sx / tx))
    x = F.interpolate(vol[None, None], size=(mz, my, mx), mode="trilinear", align_corners=False)
    x = (x.clamp(*R.HU_CLIP) - R.MEAN) / R.STD
    mult = 2 ** R.NET["depth"]
    pz, py, px = [max(-(-v // mult) * mult, p) for v, p in zip((mz, my, mx), patch_zyx)]
    x = F.pad(x, (0, px - mx, 0, py - my, 0, pz - mz), mode="replicate")[0, 0]
    tpz, tpy, tpx = patch_zyx
    weight = torch.from_numpy(gaussian(patch_zyx)).float()
    total = torch.zeros((R.NCLASS, pz, py, px))
    weights = torch.zeros((pz, py, px))
    with torch.no_grad():
        for z0 in tile_starts(pz, tpz, overlap):
            for y0 in tile_starts(py, tpy, overlap):
                for x0 in tile_starts(px, tpx, overlap):
                    out = model(x[z0:z0 + tpz, y0:y0 + tpy, x0:x0 + tpx][None, None])[0]
                    total[:, z0:z0 + tpz, y0:y0 + tpy, x0:x0 + tpx] += out * weight
                    weights[z0:z0 + tpz, y0:y0 + tpy, x0:x0 + tpx] += weight
        probs = torch.softmax(total / weights, 0)[:, :mz, :my, :mx]
        back = F.interpolate(probs[None], size=(nz, ny, nx), mode="trilinear", align_corners=False)[0]
    return back.argmax(0).numpy().astype(np.uint8)


def labels_from_seg(seg_path, folder):
    """The label map [z, y, x] on the patient's grid from a Delineate SEG of the patient's series made by
    training/openkbp_to_dicom.py (BINARY, one frame per segment and source slice; each frame placed by its
    ImagePositionPatient along the NIfTI's slice axis). Segment numbers are mapped back to model classes by their
    labels (the manifest's names), so the SEG path and the Python path score the same classes."""
    import pydicom
    from openkbp_to_dicom import nifti_affine

    ds = pydicom.dcmread(seg_path)
    ras = nifti_affine(os.path.join(folder, "ct.nii.gz"))
    z0, dz = ras[2, 3], ras[2, 2]  # LPS z = RAS z: slice k lies at z0 + dz * k
    number_to_class = {int(s.SegmentNumber): R.CLASSES.index(s.SegmentLabel) for s in ds.SegmentSequence}
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    ni, nj, nk = R.read_nifti(os.path.join(folder, "ct.nii.gz"))[0].shape
    assert (ds.Rows, ds.Columns) == (nj, ni), "the SEG's frames are the source slices"
    label = np.zeros((nk, nj, ni), np.uint8)
    for f, frame in zip(ds.PerFrameFunctionalGroupsSequence, frames):
        c = number_to_class[int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber)]
        k = int(round((float(f.PlanePositionSequence[0].ImagePositionPatient[2]) - z0) / dz))
        label[k][frame > 0] = c
    return label


def agreement_dice(a, b):
    """Dice of two label masks; None when both are empty (nothing to disagree on)."""
    total = int(a.sum() + b.sum())
    return round(float(2 * (a & b).sum() / total), 5) if total else None


def surface(mask):
    return mask & ~ndi.binary_erosion(mask, structure=ndi.generate_binary_structure(3, 1), border_value=0)


def scores(pred, ref, spacing_zyx):
    inter, total = np.logical_and(pred, ref).sum(), pred.sum() + ref.sum()
    dice = float(2 * inter / total) if total else 1.0
    if not pred.any():
        return {"dice": 0.0, "hd95": None, "msd": None, "voxels": int(ref.sum()), "predicted": 0}
    sp, sr = surface(pred), surface(ref)
    to_ref = ndi.distance_transform_edt(~sr, sampling=spacing_zyx)[sp]
    to_pred = ndi.distance_transform_edt(~sp, sampling=spacing_zyx)[sr]
    hd95 = max(float(np.percentile(to_ref, 95)), float(np.percentile(to_pred, 95)))
    msd = float(np.concatenate([to_ref, to_pred]).mean())
    return {"dice": round(dice, 4), "hd95": round(hd95, 2), "msd": round(msd, 2), "voxels": int(ref.sum()), "predicted": int(pred.sum())}


def evaluate_patient(model, folder, patch_zyx, seg=None):
    """Scores one patient: the model's prediction, or with `seg` the label map of a Delineate SEG (the DICOM path)."""
    info = json.load(open(os.path.join(folder, "contoured.json")))
    ct, spacing = R.read_nifti(os.path.join(folder, "ct.nii.gz"))
    oars, _ = R.read_nifti(os.path.join(folder, "oars.nii.gz"))
    label = labels_from_seg(seg, folder) if seg else predict(model, ct, spacing, patch_zyx)  # [z, y, x] = [k, j, i]
    ref = np.asarray(oars, dtype=np.uint8).transpose(2, 1, 0)
    hu = np.asarray(ct, dtype=np.float32).transpose(2, 1, 0)
    keep = np.ones(ref.shape[0], bool)
    keep[list(info["suspect_slices_k"])] = False
    spacing_zyx = (spacing[2], spacing[1], spacing[0])
    out = {"patient": info["patient"], "suspectSlices": int((~keep).sum()), "organs": {}, "source": seg or "python"}
    for c, name in ORGANS:
        if DATA_NAME[c] not in info["contoured"]:
            continue
        r = (ref == c) & keep[:, None, None]
        if not r.any():
            continue
        p = (label == c) & keep[:, None, None]
        out["organs"][name] = scores(p, r, spacing_zyx)
    trusted = R.trusted_body_slices(info)
    body = R.body_outline(np.clip(hu, *R.HU_CLIP))[trusted]
    ext = (label > 0)[trusted]  # External = everything the model puts inside the body (organs included)
    out["externalDice"] = round(float(2 * (body & ext).sum() / max(1, body.sum() + ext.sum())), 4)
    return out


def summarise(patients):
    table = {}
    for _, name in ORGANS:
        rows = [p["organs"][name] for p in patients if name in p["organs"]]
        if not rows:
            continue
        dice = np.array([r["dice"] for r in rows])
        hd = np.array([r["hd95"] for r in rows if r["hd95"] is not None])
        msd = np.array([r["msd"] for r in rows if r["msd"] is not None])
        s = {"patients": len(rows), "missed": int(sum(r["predicted"] == 0 for r in rows)),
             "dice": {"mean": round(float(dice.mean()), 4), "median": round(float(np.median(dice)), 4), "worst": round(float(dice.min()), 4)}}
        if hd.size:
            s["hd95Mm"] = {"mean": round(float(hd.mean()), 2), "median": round(float(np.median(hd)), 2), "worst": round(float(hd.max()), 2)}
            s["msdMm"] = {"mean": round(float(msd.mean()), 2), "median": round(float(np.median(msd)), 2), "worst": round(float(msd.max()), 2)}
        table[name] = s
    ext = np.array([p["externalDice"] for p in patients])
    table["External (vs classical outline)"] = {"patients": len(patients), "dice": {"mean": round(float(ext.mean()), 4), "median": round(float(np.median(ext)), 4), "worst": round(float(ext.min()), 4)}}
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="training/checkpoints/hn-oar/last.pt")
    ap.add_argument("--data", default="../shared/data/openkbp-hn-oar")
    ap.add_argument("--split", default="validation")
    ap.add_argument("--patients", nargs="*", help="only these patients (e.g. pt_201)")
    ap.add_argument("--patch", type=int, nargs=3, default=list(R.PATCH), help="tile size z y x (default: the training patch)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seg", nargs="*", help="score these Delineate SEG files instead (one per patient, in --patients order)")
    ap.add_argument("--agreement", action="store_true", help="with --seg: also predict in Python and count equal voxels")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, meta = load_model(a.checkpoint)
    root = os.path.join(a.data, a.split)
    names = a.patients or sorted(os.listdir(root), key=lambda n: int(n.split("_")[1]))
    t0, patients = time.time(), []
    if a.seg and len(a.seg) != len(names):
        raise SystemExit("--seg needs one SEG per patient named with --patients")
    for i, n in enumerate(names):
        folder = os.path.join(root, n)
        patients.append(evaluate_patient(model, folder, tuple(a.patch), a.seg[i] if a.seg else None))
        p = patients[-1]
        if a.seg and a.agreement:
            ct, spacing = R.read_nifti(os.path.join(folder, "ct.nii.gz"))
            mine, theirs = predict(model, ct, spacing, tuple(a.patch)), labels_from_seg(a.seg[i], folder)
            p["agreement"] = {"voxels": int(mine.size), "equal": int((mine == theirs).sum()),
                              "perClassDice": {R.CLASSES[c]: agreement_dice(mine == c, theirs == c) for c in range(1, R.NCLASS)}}
            print(f"{n}: Python vs SEG {p['agreement']}", flush=True)
        print(f"{n}: " + ", ".join(f"{k} {v['dice']:.3f}" for k, v in p["organs"].items()) + f"; External {p['externalDice']:.3f}", flush=True)
    report = {"model": "hn-oar", "checkpoint": a.checkpoint, "checkpointState": meta, "split": a.split,
              "tile": a.patch, "seconds": round(time.time() - t0, 1), "machine": f"{platform.machine()}, {a.threads} thread(s), torch {torch.__version__}",
              "summary": summarise(patients), "patients": patients,
              "command": "/usr/bin/python3 training/evaluate_hn_oar.py " + " ".join(sys.argv[1:])}
    print(json.dumps(report["summary"], indent=1))
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
