"""Writes a NIfTI CT volume as a DICOM CT series, voxel order kept: column = NIfTI i, row = j, slice = k.

    /usr/bin/python3 training/nifti_to_dicom.py IN.nii.gz OUT_DIR

The slices are stacked along the row x column normal at the NIfTI k spacing, so Delineate reads the series back as the
same voxel array (and an nnU-Net model trained on NIfTI of that order sees the same image). The patient geometry is
a plain axial LPS frame, not the NIfTI affine: enough for tests and demonstrations, not a converter for clinical use.
Reads NIfTI-1 without nibabel (numpy only); int16 or float data, stored as int16 with rescale 1 / 0.
"""

import gzip
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DTYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 256: np.int8, 512: np.uint16}


def read_nifti(path):
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    hdr = np.frombuffer(raw[:348], dtype=np.uint8)
    dim = np.frombuffer(raw[40:56], "<i2")
    dtype = DTYPES[int(np.frombuffer(raw[70:72], "<i2")[0])]
    pixdim = np.frombuffer(raw[76:108], "<f4")
    offset = int(np.frombuffer(raw[108:112], "<f4")[0])
    slope, inter = np.frombuffer(raw[112:120], "<f4")
    n = [int(d) for d in dim[1:4]]
    data = np.frombuffer(raw[offset:offset + int(np.prod(n)) * np.dtype(dtype).itemsize], dtype).astype(np.float64)
    if slope not in (0, 1) or inter != 0:
        data = data * (slope or 1) + inter
    del hdr
    return data.reshape(n[2], n[1], n[0]), [float(p) for p in pixdim[1:4]]  # [k, j, i]


def main():
    src, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    vol, (si, sj, sk) = read_nifti(src)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(vol.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(out / f"{k:04d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "NIfTI^Fixture", "NIFTI-0001", "", "O"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = "20260101", "120000", "", "", "1"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = "CT", 1, k + 1, "Delineate"
        ds.SeriesDescription = f"from {Path(src).name}"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PatientPosition, ds.Laterality = "HFS", ""
        ds.PositionReferenceIndicator = ""
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, round(k * sk, 4)]
        ds.SliceThickness = sk
        ds.PixelSpacing = [sj, si]  # row spacing (between rows, along j), column spacing (along i)
        ds.Rows, ds.Columns = vol.shape[1], vol.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.KVP, ds.AcquisitionNumber = 120, 1
        ds.PixelData = np.round(vol[k]).astype("<i2").tobytes()
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(out / f"{k:04d}.dcm", write_like_original=False)


if __name__ == "__main__":
    main()
