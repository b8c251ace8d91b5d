#!/usr/bin/env python3
"""An OpenKBP patient (../shared/data/openkbp-hn-oar/<split>/pt_N/ct.nii.gz) as a CT DICOM series, so the evaluation
and the demo go through the real DICOM path (a PACS, `delineate segment`).

    /usr/bin/python3 training/openkbp_to_dicom.py --patient ../shared/data/openkbp-hn-oar/validation/pt_201 --out DIR

- CT Image Storage, one file per axial slice (k = 0, the head end, is instance 1), 128 x 128 pixels, 16-bit
  unsigned with RescaleIntercept -1024 and RescaleSlope 1 (HU = stored - 1024; the data reaches -1000 .. 27036 HU,
  metal streaks included, so nothing is clipped here). Voxels OpenKBP supplied no CT for stay -1000 HU, as in the
  NIfTI (see the data's README, caveat 1).
- Geometry from the NIfTI's affine (RAS, qform = sform), turned into DICOM's LPS: ImageOrientationPatient
  1\\0\\0\\0\\1\\0 (columns = i towards the patient's left, rows = j towards posterior), ImagePositionPatient of
  voxel (0, 0, k), PixelSpacing (row spacing, column spacing) and SliceThickness and SpacingBetweenSlices from the
  voxel size. OpenKBP gives no scanner position: the volume's centre is at (0, 0, 0) mm. PatientPosition HFS
  (supine, head first: the README's caveat 4).
- No real person: PatientName "OpenKBP^pt_N", PatientID "OpenKBP-pt_N", no birth date. UIDs (study, series, frame of
  reference, instances) are 2.25 UIDs derived from the split and patient name, so converting twice gives the same
  series (a PACS keeps one copy). Data: OpenKBP (github.com/ababier/open-kbp, MIT licence).
"""
import argparse, gzip, json, os, struct, sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_hn_oar import read_nifti  # noqa: E402

CT = "1.2.840.10008.5.1.4.1.1.2"
INTERCEPT = -1024


def uid(*parts):
    """A 2.25 UID from a hash of the parts: the same input gives the same UID."""
    return generate_uid(prefix=None, entropy_srcs=["openkbp-hn-oar", *parts])


def nifti_affine(path):
    """The sform rows (srow_x, srow_y, srow_z) of a NIfTI-1 file: voxel (i, j, k, 1) -> RAS mm."""
    raw = (gzip.open if path.endswith(".gz") else open)(path, "rb").read(348)
    endian = "<" if struct.unpack("<i", raw[:4])[0] == 348 else ">"
    rows = struct.unpack(endian + "12f", raw[280:328])
    return np.array(rows, dtype=np.float64).reshape(3, 4)


def ds_str(v):
    """A decimal string (DS, at most 16 characters) for a float."""
    s = f"{v:.6f}".rstrip("0").rstrip(".")
    return s if s not in ("-0", "") else "0"


def convert(folder, out, split=None):
    info = json.load(open(os.path.join(folder, "contoured.json")))
    patient, split = info["patient"], split or info["split"]
    path = os.path.join(folder, "ct.nii.gz")
    hu, (si, sj, sk) = read_nifti(path)
    ras = nifti_affine(path)
    lps = ras * np.array([[-1], [-1], [1]])  # RAS -> LPS: x and y change sign
    # the README's axes: i -> patient's left, j -> posterior, k -> inferior; the affine must say the same
    directions = lps[:, :3] / np.linalg.norm(lps[:, :3], axis=0)
    if not np.allclose(directions, np.diag([1, 1, -1]), atol=1e-4):
        raise SystemExit(f"{path}: unexpected axes {directions.tolist()} (expected L, P, I)")
    key = f"{split}/{patient}"
    study, series, frame = uid(key, "study"), uid(key, "series"), uid(key, "frame")
    os.makedirs(out, exist_ok=True)
    stored = np.asarray(hu, dtype=np.int32) - INTERCEPT
    if stored.min() < 0 or stored.max() > 65535:
        raise SystemExit(f"{path}: HU {hu.min()}..{hu.max()} do not fit 16 bits with intercept {INTERCEPT}")
    number = int(patient.split("_")[1])
    for k in range(hu.shape[2]):
        pos = lps @ np.array([0.0, 0.0, k, 1.0])
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CT
        ds.file_meta.MediaStorageSOPInstanceUID = uid(key, "image", str(k))
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID, ds.SOPInstanceUID = CT, ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = "20200101", "000000", "20200101", "000000"
        ds.AccessionNumber, ds.Modality, ds.Manufacturer = "", "CT", ""
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "OpenKBP head and neck"
        ds.SeriesDescription = f"OpenKBP {split} {patient} CT (128x128x128 grid)"
        ds.PatientName, ds.PatientID = f"OpenKBP^{patient}", f"OpenKBP-{patient}"
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        ds.BodyPartExamined = "HEADNECK"
        ds.SliceThickness = ds_str(sk)
        ds.SpacingBetweenSlices = ds_str(sk)
        ds.KVP = ""
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyID = str(number)
        ds.SeriesNumber, ds.AcquisitionNumber, ds.InstanceNumber = 1, 1, k + 1
        ds.PatientOrientation = ""
        ds.ImagePositionPatient = [ds_str(v) for v in pos]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame, ""
        ds.SliceLocation = ds_str(pos[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]  # rows run along j, columns along i
        ds.PixelSpacing = [ds_str(sj), ds_str(si)]  # (between rows, between columns)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = INTERCEPT, 1, "HU"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).astype("<u2").tobytes()  # [row j][column i]
        ds.is_little_endian, ds.is_implicit_VR = True, False
        pydicom.dcmwrite(os.path.join(out, f"ct_{k:03d}.dcm"), ds, write_like_original=False)
    return {"patient": patient, "split": split, "slices": hu.shape[2], "study": study, "series": series}


def canonical(path):
    """A NIfTI's voxels and affine with its axes permuted and flipped so the affine's diagonal is positive: two files
    of the same grid in different voxel orders compare equal after this."""
    a, _ = read_nifti(path)
    aff = nifti_affine(path)
    a, m, t = np.asarray(a, dtype=np.float64), aff[:, :3].copy(), aff[:, 3].copy()
    perm = np.argmax(np.abs(m), axis=0)
    if sorted(perm.tolist()) != [0, 1, 2]:
        raise SystemExit(f"{path}: oblique or degenerate affine {aff.tolist()}")
    order = np.argsort(perm)
    a, m = np.transpose(a, order), m[:, order]
    for ax in range(3):
        if m[ax, ax] < 0:
            t = t + m[:, ax] * (a.shape[ax] - 1)
            m[:, ax] = -m[:, ax]
            a = np.flip(a, ax)
    return a, m, t


def verify(patient_folder, dicom_folder):
    """Converts the DICOM series back with dcm2niix and compares it with the source NIfTI: grid, affine (mm) and
    voxels (HU). Returns a dict (the test asserts on it)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dcm2niix", "-z", "y", "-o", tmp, "-f", "ct", dicom_folder], check=True, capture_output=True)
        a, ma, ta = canonical(os.path.join(patient_folder, "ct.nii.gz"))
        b, mb, tb = canonical(os.path.join(tmp, "ct.nii.gz"))
    same_shape = a.shape == b.shape
    return {"shape": list(a.shape), "dcm2niixShape": list(b.shape), "affineMaxAbsDiffMm": float(max(np.abs(ma - mb).max(), np.abs(ta - tb).max())),
            "voxelsEqual": bool(same_shape and np.array_equal(a, b)), "voxelMaxAbsDiff": float(np.abs(a - b).max()) if same_shape else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patient", required=True, help="an OpenKBP patient folder (ct.nii.gz, contoured.json)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--verify", action="store_true", help="read the series back with dcm2niix, compare, print JSON")
    a = ap.parse_args()
    r = convert(a.patient, a.out)
    print(f"{r['split']} {r['patient']}: {r['slices']} slices -> {a.out} (series {r['series']})")
    if a.verify:
        print(json.dumps(verify(a.patient, a.out)))


if __name__ == "__main__":
    main()
