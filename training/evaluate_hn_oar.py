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

Through the DICOM path (--dicom; needs `npm run build` and plastimatch; the checkpoint is exported by
export_hn_oar.py into a temporary copy of models/hn-oar, manifest as shipped, so both paths run the same weights):

    /usr/bin/python3 training/evaluate_hn_oar.py --dicom --checkpoint training/checkpoints/hn-oar/last.pt \
        --split validation --out training/reports/hn-oar-dicom.json

For each patient: openkbp_to_dicom.py writes its CT series, `delineate segment` runs that package on it (ONNX, the
manifest's post-processing), and the same metrics are computed three ways: (1) the Python prediction above with
the manifest's organ post-processing applied (largest 6-connected component per organ, as the engine does), (2) the
label map of the SEG read back with pydicom, (3) the RTSTRUCT's ROIs rasterised by plastimatch on the CT series
(organs from their own ROI; External from its ROI, which contains the organs). The report holds all three tables
and, per organ and metric, the largest difference between any two over all patients, with `agree` true when each is
within TOLERANCE (Dice 0.01; HD95 and MSD 1 mm). External is the engine's classical step in (2) and (3) but the
network's in (1), so its Dice is reported for each and not compared.
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


# largest difference allowed between the Python, SEG and RTSTRUCT figures of an organ (per patient): the ONNX export
# and the engine's resampling differ from PyTorch's in the last bits, which moves a few boundary voxels
TOLERANCE = {"dice": 0.01, "hd95": 1.0, "msd": 1.0}


def keep_largest_components(label, classes):
    """The manifest's keepLargestComponent on a [z, y, x] label map: per class, only its largest 6-connected 3D
    component stays; the rest becomes background (0). In place."""
    six = ndi.generate_binary_structure(3, 1)
    for c in classes:
        comp, n = ndi.label(label == c, structure=six)
        if n > 1:
            sizes = np.bincount(comp.ravel())[1:]
            label[(comp > 0) & (comp != 1 + int(np.argmax(sizes)))] = 0
    return label


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_for(checkpoint, work):
    """A model package of the checkpoint for `delineate segment`: models/hn-oar/model.json as shipped (its
    post-processing too) with the checkpoint exported by export_hn_oar.py beside it, so the DICOM path runs the very
    weights the Python path does. Returns the config file to pass and the ONNX file."""
    import shutil
    import subprocess

    onnx = os.path.join(work, "models", "hn-oar", "model.onnx")
    os.makedirs(os.path.dirname(onnx), exist_ok=True)
    shutil.copy(os.path.join(ROOT, "models", "hn-oar", "model.json"), os.path.dirname(onnx))
    subprocess.run([sys.executable, os.path.join(ROOT, "training", "export_hn_oar.py"), "--checkpoint", checkpoint,
                    "--out", onnx], check=True, capture_output=True)
    config = json.load(open(os.path.join(ROOT, "config", "default.json")))
    config.update(model={"dir": os.path.join(work, "models"), "id": "hn-oar"}, dataDir=os.path.join(work, "var"))
    with open(os.path.join(work, "config.json"), "w") as f:
        json.dump(config, f)
    return os.path.join(work, "config.json"), onnx


def run_delineate(folder, work, config):
    """The patient as a DICOM series (openkbp_to_dicom.py) through `delineate segment` (the package of `config`):
    returns the CT folder and the SEG and RTSTRUCT files it wrote."""
    import glob
    import subprocess

    from openkbp_to_dicom import convert

    ct, out = os.path.join(work, "ct"), os.path.join(work, "out")
    convert(folder, ct)
    subprocess.run(["node", os.path.join(ROOT, "dist", "src", "cli", "main.js"), "segment", ct, "--out", out,
                    "--model", "hn-oar", "--format", "seg,sr,rtstruct", "--config", config], check=True, capture_output=True)
    seg, = glob.glob(os.path.join(out, "*", "*", "seg.dcm"))
    return ct, seg, os.path.join(os.path.dirname(seg), "rtstruct.dcm")


def labels_from_rtstruct(rt_path, ct_dir, folder, work):
    """The label map [z, y, x] on the patient's grid from an RTSTRUCT, each ROI rasterised by plastimatch on the CT
    series (`plastimatch convert --referenced-ct`, one MetaImage mask per ROI). plastimatch's slices are placed by
    the mask's Offset and spacing along z (its grid runs up the patient, the NIfTI's down). Organs are written after
    External, so the External ROI, which contains them, does not cover them."""
    import glob
    import subprocess

    from openkbp_to_dicom import nifti_affine

    masks = os.path.join(work, "rt-masks")
    subprocess.run(["plastimatch", "convert", "--input", rt_path, "--referenced-ct", ct_dir, "--output-prefix", masks,
                    "--prefix-format", "mha"], check=True, capture_output=True)
    ras = nifti_affine(os.path.join(folder, "ct.nii.gz"))
    ni, nj, nk = R.read_nifti(os.path.join(folder, "ct.nii.gz"))[0].shape
    label = np.zeros((nk, nj, ni), np.uint8)
    files = sorted(glob.glob(os.path.join(masks, "*.mha")), key=lambda f: os.path.basename(f) != "External.mha")
    for f in files:
        data = open(f, "rb").read()
        end = data.index(b"ElementDataFile = LOCAL\n") + len(b"ElementDataFile = LOCAL\n")
        h = dict(line.split(" = ", 1) for line in data[:end].decode().strip().split("\n"))
        size, offset = [int(v) for v in h["DimSize"].split()], [float(v) for v in h["Offset"].split()]
        spacing, matrix = [float(v) for v in h["ElementSpacing"].split()], [float(v) for v in h["TransformMatrix"].split()]
        assert size == [ni, nj, nk] and np.allclose(matrix, [1, 0, 0, 0, 1, 0, 0, 0, 1]), (f, size, matrix)
        # in plane, plastimatch's voxel (0, 0) must be the NIfTI's (LPS x = -RAS x, y = -RAS y)
        assert np.allclose(offset[:2], [-ras[0, 3], -ras[1, 3]], atol=1e-2), (f, offset, ras[:, 3])
        mask = np.frombuffer(data[end:], np.uint8).reshape(nk, nj, ni) > 0
        ks = np.rint((offset[2] + spacing[2] * np.arange(nk) - ras[2, 3]) / ras[2, 2]).astype(int)
        assert sorted(ks.tolist()) == list(range(nk)), (f, ks[:3])
        grid = np.zeros_like(mask)
        grid[ks] = mask
        label[grid] = R.CLASSES.index(os.path.basename(f)[:-4])
    return label


def agreement(paths):
    """Per organ and metric, the largest difference between any two of the paths' figures over all patients."""
    out = {}
    for _, name in ORGANS:
        for metric in ("dice", "hd95", "msd"):
            worst = None
            for rows in zip(*(p["patients"] for p in paths.values())):
                vals = [r["organs"][name][metric] for r in rows if name in r["organs"]]
                if len(vals) == len(rows) and all(v is not None for v in vals):
                    worst = max(worst or 0.0, max(vals) - min(vals))
                elif len({v is None for v in vals}) > 1:
                    worst = float("inf")  # one path found the organ, another missed it
            if worst is not None:
                out.setdefault(name, {})[metric] = round(worst, 4) if worst < float("inf") else "missed by one path"
    agree = all(isinstance(v, float) and v <= TOLERANCE[m] for d in out.values() for m, v in d.items())
    return {"maxAbsDifference": out, "tolerance": TOLERANCE, "agree": agree}


def evaluate_dicom(model, folder, patch_zyx, work, config):
    """One patient three ways (module docstring): Python with the organ post-processing, SEG, RTSTRUCT."""
    ct_dir, seg, rt = run_delineate(folder, work, config)
    ct, spacing = R.read_nifti(os.path.join(folder, "ct.nii.gz"))
    organs = [c for c, _ in ORGANS]
    python = keep_largest_components(predict(model, ct, spacing, patch_zyx), organs)
    return {
        "python": evaluate_patient(model, folder, patch_zyx, label=python),
        "seg": evaluate_patient(model, folder, patch_zyx, label=labels_from_seg(seg, folder), source="seg"),
        "rtstruct": evaluate_patient(model, folder, patch_zyx, label=labels_from_rtstruct(rt, ct_dir, folder, work),
                                     source="rtstruct"),
    }


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


def evaluate_patient(model, folder, patch_zyx, seg=None, label=None, source=None):
    """Scores one patient: the model's prediction, with `seg` the label map of a Delineate SEG (the DICOM path), or
    a given label map [z, y, x] (`label`, named by `source`)."""
    info = json.load(open(os.path.join(folder, "contoured.json")))
    ct, spacing = R.read_nifti(os.path.join(folder, "ct.nii.gz"))
    oars, _ = R.read_nifti(os.path.join(folder, "oars.nii.gz"))
    if label is None:
        label = labels_from_seg(seg, folder) if seg else predict(model, ct, spacing, patch_zyx)  # [z, y, x] = [k, j, i]
    ref = np.asarray(oars, dtype=np.uint8).transpose(2, 1, 0)
    hu = np.asarray(ct, dtype=np.float32).transpose(2, 1, 0)
    keep = np.ones(ref.shape[0], bool)
    keep[list(info["suspect_slices_k"])] = False
    spacing_zyx = (spacing[2], spacing[1], spacing[0])
    out = {"patient": info["patient"], "suspectSlices": int((~keep).sum()), "organs": {}, "source": source or seg or "python"}
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
    ap.add_argument("--dicom", action="store_true", help="through the DICOM path too: `delineate segment`, SEG, RTSTRUCT (see above)")
    ap.add_argument("--work", default=None, help="with --dicom: keep each patient's series and outputs here (default: a temporary folder)")
    ap.add_argument("--merge", nargs="*", help="instead of evaluating: one report of these reports' patients (runs split "
                    "by --patients, e.g. one per core), summarised again; they must name the same checkpoint state")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.merge:
        return merge_reports(a.merge, a.out)
    torch.set_num_threads(a.threads)
    model, meta = load_model(a.checkpoint)
    root = os.path.join(a.data, a.split)
    names = a.patients or sorted(os.listdir(root), key=lambda n: int(n.split("_")[1]))
    if a.dicom:
        return main_dicom(a, model, meta, root, names)
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


def merge_reports(paths, out):
    """One report from several runs of main() over disjoint patients of one split and checkpoint."""
    reports = [json.load(open(p)) for p in paths]
    first = reports[0]
    for r in reports[1:]:
        for k in ("checkpointState", "split", "tile"):
            if r[k] != first[k]:
                raise SystemExit(f"{k} differs between the reports: {first[k]} / {r[k]}")
    patients = sorted((p for r in reports for p in r["patients"]), key=lambda p: int(p["patient"].split("_")[1]))
    names = [p["patient"] for p in patients]
    if len(set(names)) != len(names):
        raise SystemExit("a patient is in two reports")
    report = {**first, "seconds": round(sum(r["seconds"] for r in reports), 1), "summary": summarise(patients),
              "patients": patients, "command": [r["command"] for r in reports],
              "merged": "/usr/bin/python3 training/evaluate_hn_oar.py --merge " + " ".join(paths)}
    print(json.dumps(report["summary"], indent=1))
    if out:
        with open(out, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")


def main_dicom(a, model, meta, root, names):
    """--dicom: every patient three ways (Python, SEG, RTSTRUCT), their tables and how far they are apart."""
    import hashlib
    import tempfile

    t0, paths = time.time(), {"python": [], "seg": [], "rtstruct": []}
    with tempfile.TemporaryDirectory() as tmp:
        config, onnx = package_for(a.checkpoint, a.work or tmp)
        sha = hashlib.sha256(open(onnx, "rb").read()).hexdigest()
        for n in names:
            work = os.path.join(a.work or tmp, n)
            os.makedirs(work, exist_ok=True)
            three = evaluate_dicom(model, os.path.join(root, n), tuple(a.patch), work, config)
            for k, v in three.items():
                paths[k].append(v)
                print(f"{n} {k:8s}: " + ", ".join(f"{o} {s['dice']:.3f}" for o, s in v["organs"].items())
                      + f"; External {v['externalDice']:.3f}", flush=True)
    tables = {k: {"summary": summarise(v), "patients": v} for k, v in paths.items()}
    report = {"model": "hn-oar", "checkpoint": a.checkpoint, "checkpointState": meta, "split": a.split,
              "exportedOnnxSha256": sha, "tile": a.patch,
              "seconds": round(time.time() - t0, 1), "machine": f"{platform.machine()}, {a.threads} thread(s), torch {torch.__version__}",
              "agreement": agreement(tables), **tables,
              "command": "/usr/bin/python3 training/evaluate_hn_oar.py " + " ".join(sys.argv[1:])}
    print(json.dumps({"agreement": report["agreement"], "seg": report["seg"]["summary"]}, indent=1))
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return 0 if report["agreement"]["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
