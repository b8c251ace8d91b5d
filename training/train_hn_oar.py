#!/usr/bin/env python3
"""Train the head-and-neck organ-at-risk model (`models/hn-oar`, issue 15) on OpenKBP's clinical contours.

A 3D U-Net (training/unet.py: Cicek et al. 2016, upsampling + 1x1x1 convolution so WebGPU can run it) with nine
output classes: background, the seven OARs and External (the body), trained with a partial-label loss:

- **Classes** (model value: TG-263 name <- OpenKBP label): 1 Brainstem <- 1, 2 SpinalCord <- 2, 3 Parotid_R <-
  3 RightParotid, 4 Parotid_L <- 4 LeftParotid, 5 Esophagus <- 5, 6 Larynx <- 6, 7 Bone_Mandible <- 7 Mandible,
  8 External <- the classical body outline computed from the CT (`body_outline`). Organs win over External.
- **Partial labels** (an organ not contoured for a patient is unknown, not background): the logits of a sample's
  uncontoured organs are masked out of its softmax (set to -inf before log-softmax), so they get exactly no
  gradient from that sample, in the cross-entropy or the Dice; their Dice terms are skipped. A class is taught to
  be absent only by patients who contoured it. This is the "masked" form of the marginal loss: the known classes
  compete among themselves, the unknown ones sit out.
- **Loss masks**: voxels of `suspect_slices_k` (CT only around the organs there) get weight 0, as do voxels
  outside the volume after augmentation and voxels blanked by the augmentation. On slices where OpenKBP's CT is
  incomplete (the body outline cannot be trusted there: `trusted_body_slices`), a voxel labelled background or
  External counts as "background or External" (the log of the sum of both probabilities), and External's Dice
  leaves those slices out.
- **Loss**: cross-entropy (over the sample's known classes, with the allowed set per voxel) + soft Dice per class
  over the batch (only samples where the class is contoured, only weighted voxels; background's Dice not used).
- **Grid**: every patient resampled (linear for HU, nearest for labels) from its own spacing to the target
  spacing SPACING (x, y, z = 3.906, 3.906, 2.5 mm: the data's mode, 62 of 170 training patients need no
  resampling), which the manifest names so that the engine resamples a series to the same grid. Axes as the
  engine's tensors: [z, y, x], x = the patient's right -> left, y = anterior -> posterior, z = superior ->
  inferior (the manifest's orientation "LPI").
- **Intensity**: HU clipped to -1000..3095 (the data's 12-bit range; metal streaks reach 27000 HU), then
  (HU - 0) / 500 (fixed statistics, the manifest's ct-clip-zscore).
- **Augmentation** (per sample, one resampling): rotation (+-15 deg about z, +-5 deg about x and y), scaling
  0.85-1.15, the U-Net paper's elastic deformation (displacements on a coarse grid), intensity (Gaussian noise,
  shift, scale), left-right mirroring with the parotid labels (and their contoured flags) swapped, and random
  blanking: a run of slices where only a random box keeps its CT, or a random box set to -1000 HU, the blanked
  voxels out of the loss, so that "tissue floating in air" does not mean "organ" (the shortcut OpenKBP's
  organ-only slices would teach).
- **Network size**: UNet(dims=3, features=16, depth=3): 16-32-64-128 features, three poolings, ~1.4 M parameters.
  Sized for CPU training (one core, ~ 5 s per patch of 48x80x80 forward and backward, on a shared 2-core machine) and a checkpoint small enough to
  commit (weights + AdamW moments ~ 17 MB). Three poolings give a receptive field of ~ 90 voxels in-plane, enough
  context to tell left from right parotid; a fourth pooling would quadruple the parameters (checkpoint > 60 MB).
- **Patches**: 48 (z) x 80 (y) x 80 (x) voxels = 120 x 312 x 312 mm (the whole head or neck cross-section, the
  parotids to the larynx in z), batch 2; half of the samples centred on a
  random voxel of a random contoured organ (nnU-Net's foreground oversampling), the others anywhere.

Seeded and resumable (training/trainer.py: the checkpoint holds weights, optimiser, schedule, step and both random
generators; the same command run again resumes). On a GPU when torch sees one.

    nohup nice -n 5 /usr/bin/python3 training/train_hn_oar.py --data ../shared/data/openkbp-hn-oar \\
        --checkpoint training/checkpoints/hn-oar/last.pt > training/runs/hn-oar.log 2>&1 &
"""
import argparse, functools, json, math, os, sys, time

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainer import train as train_loop  # noqa: E402
from unet import UNet  # noqa: E402

CLASSES = ["background", "Brainstem", "SpinalCord", "Parotid_R", "Parotid_L", "Esophagus", "Larynx", "Bone_Mandible", "External"]
# OpenKBP's structure names -> model class (the data's label values are the same numbers for 1..7)
DATA_NAMES = {"Brainstem": 1, "SpinalCord": 2, "RightParotid": 3, "LeftParotid": 4, "Esophagus": 5, "Larynx": 6, "Mandible": 7}
EXTERNAL = 8
NCLASS = len(CLASSES)
SPACING_XYZ = (3.906, 3.906, 2.5)  # mm, the manifest's input.spacing
HU_CLIP = (-1000.0, 3095.0)
MEAN, STD = 0.0, 500.0
BODY_HU = -350.0  # body threshold: above fat (-100) and foam / immobilisation masks (-900..-700), below skin partial volumes
NET = {"dims": 3, "features": 16, "depth": 3}
PATCH = (48, 80, 80)  # z, y, x; multiples of 2^depth


def normalise(hu):
    return ((np.clip(hu, *HU_CLIP) - MEAN) / STD).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# data

def largest_component(mask, structure=None):
    lab, n = ndi.label(mask, structure=structure)
    if n <= 1:
        return mask
    sizes = ndi.sum(mask, lab, range(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def body_outline(hu):
    """The classical External on a [z, y, x] HU volume: HU > BODY_HU; an opening per axial slice (3x3 cross) that
    cuts thin bridges to the couch and immobilisation masks; the largest 3D component (the couch and the board are
    separate from the patient once the bridges are cut); holes filled per axial slice (airway, sinuses) and in 3D.
    The opening is undone inside the kept component (a dilation by the same element, within the threshold mask) so
    the skin line is not eroded."""
    raw = hu > BODY_HU
    cross = ndi.generate_binary_structure(2, 1)
    opened = np.stack([ndi.binary_opening(s, cross) for s in raw])
    body = largest_component(opened)
    body = np.stack([ndi.binary_dilation(s, cross) for s in body]) & raw
    body = np.stack([ndi.binary_fill_holes(s) for s in body])
    return ndi.binary_fill_holes(body)


def trusted_body_slices(info, hu_supplied_area_ratio=0.6):
    """Axial slices k (of the data's own grid) where the CT OpenKBP supplied can be trusted to show the whole body
    cross-section, so the body outline there is a target: not suspect, at least 80 cm2 of supplied CT (less than any
    real neck), and not a sudden drop below 60 % of the largest area within 3 slices (a cut field of view)."""
    area = np.asarray(info["ct_area_cm2_per_slice_k"], dtype=np.float64)
    ok = area >= 80.0
    neighbour_max = ndi.maximum_filter1d(area, size=7, mode="nearest")
    ok &= area >= hu_supplied_area_ratio * neighbour_max
    ok[list(info["suspect_slices_k"])] = False
    return ok


def zoom_to(arr, factors, order):
    if all(abs(f - 1) < 1e-6 for f in factors):
        return arr
    return ndi.zoom(arr, factors, order=order, mode="nearest", grid_mode=True)


def read_nifti(path):
    """A NIfTI-1 file (.nii or .nii.gz) as (array indexed [i, j, k], voxel sizes (i, j, k) mm): enough of the format
    for OpenKBP's files (no nibabel in Debian's default Python set)."""
    import gzip
    import struct

    raw = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
    endian = "<" if struct.unpack("<i", raw[:4])[0] == 348 else ">"
    dim = struct.unpack(endian + "8h", raw[40:56])
    datatype = struct.unpack(endian + "h", raw[70:72])[0]
    pixdim = struct.unpack(endian + "8f", raw[76:108])
    offset = int(struct.unpack(endian + "f", raw[108:112])[0])
    slope, inter = struct.unpack(endian + "2f", raw[112:120])
    dtype = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2"}[datatype]
    shape = dim[1:1 + dim[0]]
    arr = np.frombuffer(raw, dtype=endian + dtype, count=int(np.prod(shape)), offset=offset).reshape(shape, order="F")
    if slope not in (0.0, 1.0) or inter != 0.0:
        arr = arr * slope + inter
    return arr, tuple(float(v) for v in pixdim[1:4])


def load_patient(folder, spacing_xyz=SPACING_XYZ):
    """One OpenKBP patient on the model grid, as the engine's tensors are laid out ([z, y, x]).

    Returns a dict: hu (int16), label (uint8: 0..7 the organs, 8 External), per axial slice sliceWeight (False on
    suspect slices: out of the loss) and sliceTrusted (True where the body outline is a target), contoured (bool
    per class), the patient's own spacing (x, y, z mm)."""
    info = json.load(open(os.path.join(folder, "contoured.json")))
    ct, (sx, sy, sz) = read_nifti(os.path.join(folder, "ct.nii.gz"))
    oars, _ = read_nifti(os.path.join(folder, "oars.nii.gz"))
    # NIfTI (i, j, k) = (R->L, A->P, S->I) -> [k, j, i] = [z, y, x]
    hu = np.ascontiguousarray(np.asarray(ct, dtype=np.float32).transpose(2, 1, 0))
    lab = np.ascontiguousarray(np.asarray(oars, dtype=np.uint8).transpose(2, 1, 0))
    suspect = np.zeros(hu.shape[0], bool)
    suspect[list(info["suspect_slices_k"])] = True
    trusted = trusted_body_slices(info)
    factors = (sz / spacing_xyz[2], sy / spacing_xyz[1], sx / spacing_xyz[0])
    hu = zoom_to(np.clip(hu, *HU_CLIP), factors, 1)
    lab = zoom_to(lab, factors, 0)
    # a resampled slice is suspect (untrusted) if any original slice it touches is
    suspect = zoom_to(suspect.astype(np.float32), factors[:1], 1) > 0
    trusted = zoom_to((~trusted).astype(np.float32), factors[:1], 1) <= 0
    body = body_outline(hu)
    label = np.where(lab > 0, lab, np.where(body, EXTERNAL, 0)).astype(np.uint8)
    contoured = np.zeros(NCLASS, bool)
    contoured[0] = contoured[EXTERNAL] = True
    for name in info["contoured"]:
        contoured[DATA_NAMES[name]] = True
    return {"name": info["patient"], "hu": hu.astype(np.int16), "label": label, "sliceWeight": ~suspect,
            "sliceTrusted": trusted & ~suspect, "contoured": contoured, "spacing": (sx, sy, sz)}


# ---------------------------------------------------------------------------------------------------------------
# loss

def partial_label_loss(logits, target, eps=1e-5, organ_weight=1.0):
    """Dice + cross-entropy over each sample's known classes (see the module's docstring). `organ_weight` multiplies
    the cross-entropy weight of voxels labelled an organ (the mean stays a weighted mean), so organs of a few hundred
    voxels are not drowned by the patch's ~600,000 background and body voxels.

    target = (label [N,Z,Y,X] int64, weight [N,Z,Y,X] float, trusted [N,Z,Y,X] float, contoured [N,C] bool).
    Background and External are always known; an uncontoured organ's logit is masked out of its sample's softmax
    (exactly zero gradient). A voxel labelled background or External on an untrusted slice may be either."""
    label, weight, trusted, contoured = target
    n, c = logits.shape[:2]
    known = contoured.bool().view(n, c, *([1] * (logits.ndim - 2)))
    masked = logits.masked_fill(~known, -1e4)  # finite, so 0 * (-1e4) stays 0; exp underflows to exactly 0
    logp = torch.log_softmax(masked, 1)
    onehot = F.one_hot(label, c).movedim(-1, 1).bool()
    # allowed classes per voxel: its label; on untrusted slices background and External for either of them
    either = ((label == 0) | (label == EXTERNAL)) & (trusted < 0.5)
    allowed = onehot.clone()
    allowed[:, 0] |= either
    allowed[:, EXTERNAL] |= either
    allowed &= known
    target_logp = torch.logsumexp(logp.masked_fill(~allowed, -1e4), 1)
    ce_weight = weight * torch.where((label > 0) & (label < EXTERNAL), organ_weight, 1.0)  # × 1.0 is exact: weight 1 is the plain loss
    ce = -(target_logp * ce_weight).sum() / ce_weight.sum().clamp_min(1.0)
    # soft Dice per class over the batch, on weighted voxels of samples where the class is contoured
    probs = logp.exp()
    m = weight.unsqueeze(1) * known.float()
    m = torch.cat([m[:, :EXTERNAL], (m[:, EXTERNAL] * trusted).unsqueeze(1), m[:, EXTERNAL + 1:]], 1)
    axes = (0,) + tuple(range(2, logits.ndim))
    t = onehot.float()
    inter = (m * probs * t).sum(axes)
    denom = (m * probs).sum(axes) + (m * t).sum(axes)
    dice = (2 * inter + eps) / (denom + eps)
    present = m.sum(axes) > 0
    present[0] = False  # no Dice term for background
    dice_loss = (1 - dice[present]).mean() if bool(present.any()) else logits.sum() * 0
    return ce + dice_loss


# ---------------------------------------------------------------------------------------------------------------
# augmentation and batches

def rotation(rng, max_z=15.0, max_xy=5.0):
    """A random rotation matrix in [z, y, x] coordinates."""
    az, ay, ax = np.radians([rng.uniform(-max_z, max_z), rng.uniform(-max_xy, max_xy), rng.uniform(-max_xy, max_xy)])
    rz = np.array([[1, 0, 0], [0, math.cos(az), -math.sin(az)], [0, math.sin(az), math.cos(az)]])  # about z: in the y-x plane
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rx = np.array([[math.cos(ax), -math.sin(ax), 0], [math.sin(ax), math.cos(ax), 0], [0, 0, 1]])
    return rz @ ry @ rx


def sample_patch(p, rng, patch=PATCH, augment=True, fg_fraction=0.5, centre=None, organ=None):
    """One augmented patch of patient `p`: (image float32, label, weight, trusted, contoured). `centre` ([z, y, x]
    voxel coordinates) fixes where it is taken (tests); `organ` centres it near a voxel of that class; otherwise
    it is drawn."""
    shape = np.array(p["hu"].shape)
    size = np.array(patch)
    organs = [c for c in range(1, EXTERNAL) if p["contoured"][c]]
    if centre is not None:
        centre = np.asarray(centre, dtype=np.float64)
    elif organ is not None or (organs and rng.random() < fg_fraction):
        c = organ if organ is not None else organs[rng.integers(len(organs))]
        idx = np.flatnonzero(p["label"] == c)
        if idx.size:
            centre = np.array(np.unravel_index(idx[rng.integers(idx.size)], shape), dtype=np.float64)
            centre += rng.uniform(-0.3, 0.3, 3) * size  # the organ anywhere in the patch, not always at its centre
    if centre is None:
        centre = np.array([rng.uniform(0, n) for n in shape])
        if not augment:  # whole voxels, no interpolation
            centre = np.floor(centre) + np.array([0.5 if n % 2 == 0 else 0.0 for n in patch])
    # output voxel offsets from the patch centre, in mm-ish isotropic units (z scaled by its spacing)
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) - (n - 1) / 2 for n in patch], indexing="ij"))
    vox = np.array([SPACING_XYZ[2], SPACING_XYZ[1], SPACING_XYZ[0]], dtype=np.float32)
    flip = False
    if augment:
        scale = rng.uniform(0.85, 1.15)
        mat = (rotation(rng) * scale).astype(np.float32)
        mm = grid * vox[:, None, None, None]
        mm = np.tensordot(mat, mm, axes=1)
        # elastic deformation: displacements on a coarse 4x4x4 grid, sigma 6 mm, cubic interpolation to every voxel
        for a in range(3):
            coarse = rng.normal(0.0, 6.0, size=(4, 4, 4))
            mm[a] += ndi.zoom(coarse, [n / 4 for n in patch], order=3, mode="nearest")[: patch[0], : patch[1], : patch[2]]
        coords = mm / vox[:, None, None, None] + centre[:, None, None, None]
        flip = rng.random() < 0.5
    else:
        coords = grid + centre[:, None, None, None]
    hu = ndi.map_coordinates(p["hu"], coords, order=1, mode="constant", cval=-1000.0, prefilter=False)
    label = ndi.map_coordinates(p["label"], coords, order=0, mode="constant", cval=0)
    # per-slice masks by the nearest source slice; voxels from outside the volume are out of the loss
    inside = np.all([(c >= -0.5) & (c <= n - 0.5) for c, n in zip(coords, shape)], axis=0)
    zi = np.clip(np.rint(coords[0]).astype(np.int64), 0, shape[0] - 1)
    weight = (inside & p["sliceWeight"][zi]).astype(np.uint8)
    trusted = p["sliceTrusted"][zi].astype(np.uint8)
    contoured = p["contoured"].copy()
    if augment:
        if rng.random() < 0.3:
            # OpenKBP-like blanking: a run of slices keeps CT only in a random box; the rest of them is -1000 HU
            z0 = rng.integers(0, patch[0])
            z1 = min(patch[0], z0 + rng.integers(patch[0] // 12 + 1, patch[0] // 2 + 2))
            keep = np.zeros(patch[1:], bool)
            h, w = rng.integers(patch[1] // 12 + 1, patch[1] // 2), rng.integers(patch[2] // 12 + 1, patch[2] // 2)
            y0, x0 = rng.integers(0, patch[1] - h), rng.integers(0, patch[2] - w)
            keep[y0:y0 + h, x0:x0 + w] = True
            hu[z0:z1][:, ~keep] = -1000.0
            weight[z0:z1][:, ~keep] = 0
        if rng.random() < 0.2:
            # a random box set to -1000 HU (no data), out of the loss
            b = [rng.integers(n // 8 + 1, n // 2 + 1) for n in patch]
            o = [rng.integers(0, n - s) for n, s in zip(patch, b)]
            sl = tuple(slice(a, a + s) for a, s in zip(o, b))
            hu[sl] = -1000.0
            weight[sl] = 0
    image = normalise(hu)
    if augment:
        image = image * rng.uniform(0.9, 1.1) + rng.uniform(-0.1, 0.1)
        if rng.random() < 0.5:
            image = image + rng.normal(0, rng.uniform(0, 0.1), image.shape).astype(np.float32)
        if flip:  # left-right mirror: x reversed, the parotids swap names
            image, label, weight, trusted = (a[:, :, ::-1] for a in (image, label, weight, trusted))
            swapped = label.copy()
            swapped[label == 3], swapped[label == 4] = 4, 3
            label = swapped
            contoured[3], contoured[4] = contoured[4], contoured[3]
    return (np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(label), np.ascontiguousarray(weight),
            np.ascontiguousarray(trusted), contoured)


def make_batch_fn(patients, batch, patch=PATCH, augment=True, sampling="patient", fg_fraction=0.5):
    """Batches of `batch` patches. sampling "patient": a random patient, then (half the time) near a random organ
    it contoured; "organ": half the time a random organ class first, then a random patient that contoured it, so an
    organ few plans contoured (esophagus 59 of 170, larynx 81) is as often at a patch's centre as the others."""
    # for "organ" only: a scan of every patient's labels
    with_organ = {}
    if sampling == "organ":
        with_organ = {c: [p for p in patients if p["contoured"][c] and (p["label"] == c).any()] for c in range(1, EXTERNAL)}
        with_organ = {c: ps for c, ps in with_organ.items() if ps}

    def one(rng):
        if sampling == "organ" and with_organ and rng.random() < fg_fraction:
            c = sorted(with_organ)[rng.integers(len(with_organ))]
            return sample_patch(with_organ[c][rng.integers(len(with_organ[c]))], rng, patch, augment, organ=c)
        if sampling == "organ":
            return sample_patch(patients[rng.integers(len(patients))], rng, patch, augment, fg_fraction=0.0)
        return sample_patch(patients[rng.integers(len(patients))], rng, patch, augment, fg_fraction)

    def make_batch(rng):
        samples = [one(rng) for _ in range(batch)]
        x = torch.from_numpy(np.stack([s[0] for s in samples]))[:, None]
        label = torch.from_numpy(np.stack([s[1] for s in samples]).astype(np.int64))
        weight = torch.from_numpy(np.stack([s[2] for s in samples]).astype(np.float32))
        trusted = torch.from_numpy(np.stack([s[3] for s in samples]).astype(np.float32))
        contoured = torch.from_numpy(np.stack([s[4] for s in samples]))
        return x, (label, weight, trusted, contoured)
    return make_batch


def build_model():
    return UNet(dims=NET["dims"], classes=NCLASS, features=NET["features"], depth=NET["depth"])


def spacing_statistics(patients):
    sp = np.array([p["spacing"] for p in patients])
    values, counts = np.unique(sp, axis=0, return_counts=True)
    mode = values[np.argmax(counts)]
    return {"patients": len(patients), "inPlaneMm": {"min": float(sp[:, 0].min()), "median": float(np.median(sp[:, 0])), "max": float(sp[:, 0].max())},
            "sliceMm": {"min": float(sp[:, 2].min()), "median": float(np.median(sp[:, 2])), "max": float(sp[:, 2].max())},
            "modeXYZ": [float(v) for v in mode], "atMode": int(counts.max())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/openkbp-hn-oar")
    ap.add_argument("--checkpoint", default="training/checkpoints/hn-oar/last.pt")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-minutes", type=float, default=10.0)
    ap.add_argument("--patients", type=int, default=0, help="use only the first N training patients (0: all)")
    ap.add_argument("--stop-after", type=int, default=None, help="end this session after that step (resume later)")
    ap.add_argument("--sampling", choices=["patient", "organ"], default="patient",
                    help="foreground patches: a patient's random organ (phases 1-2), or a random organ class first (phase 3)")
    ap.add_argument("--organ-weight", type=float, default=1.0,
                    help="cross-entropy weight of organ voxels against background and body (phases 1-3: 1)")
    ap.add_argument("--init", default=None, help="start a new run (a later phase) from this checkpoint's weights; "
                    "ignored when --checkpoint exists, which is resumed")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    log = lambda m: print(time.strftime("%H:%M:%S ") + m, flush=True)  # noqa: E731
    log(f"torch {torch.__version__}, {a.threads} thread(s), cuda {torch.cuda.is_available()}; args {vars(a)}")
    root = os.path.join(a.data, "train")  # train/ only: nothing is chosen on validation/
    names = sorted(os.listdir(root), key=lambda n: int(n.split("_")[1]))
    if a.patients:
        names = names[: a.patients]
    t0 = time.time()
    patients = [load_patient(os.path.join(root, n)) for n in names]
    log(f"{len(patients)} training patients on the {SPACING_XYZ} mm grid in {time.time() - t0:.0f} s; spacing {json.dumps(spacing_statistics(patients))}")
    torch.manual_seed(a.seed)
    model = build_model()
    if a.init and not os.path.exists(a.checkpoint):
        start = torch.load(a.init, map_location="cpu")
        model.load_state_dict(start["model"])
        log(f"weights from {a.init} (step {start['step']} of {start['steps']})")
    log(f"UNet {NET}, {sum(p.numel() for p in model.parameters())} parameters, patch {PATCH}, batch {a.batch}")
    os.makedirs(os.path.dirname(os.path.abspath(a.checkpoint)), exist_ok=True)
    losses, seconds = train_loop(model, make_batch_fn(patients, a.batch, sampling=a.sampling),
                                 functools.partial(partial_label_loss, organ_weight=a.organ_weight), steps=a.steps, seed=a.seed,
                                 lr=a.lr, checkpoint=a.checkpoint, every_seconds=a.save_minutes * 60, log=log, log_every=20,
                                 stop_after=a.stop_after)
    log(f"stopped at step {len(losses)}/{a.steps} after {seconds:.0f} s of training in all")


if __name__ == "__main__":
    main()
