#!/usr/bin/env python3
"""Wraps a stack of EM sections (8-bit greyscale images, e.g. ISBI 2012's PNGs) as one DICOM series, so the node
and `delineate segment` can run the isbi-em model on it and write a SEG beside it.

    /usr/bin/python3 training/em_to_dicom.py --images DIR --out DIR [--first 0 --count 30]

Secondary Capture Image Storage (modality OT, conversion type WSD), 8-bit MONOCHROME2, one file per section in the
images' numeric order. There is no patient: the Patient module names the data set, not a person. The Image Plane
attributes are added to the Secondary Capture (a standard extended SOP class: allowed Type 3 additions) so the
sections form a stack: pixels 4 nm (0.000004 mm) apart, sections 50 nm apart, as the ISBI 2012 stack (ssTEM of the
Drosophila ventral nerve cord, Cardona et al.) was acquired. UIDs are derived from the source file names, so wrapping
the same images twice gives the same series (a PACS keeps one copy).
"""
import argparse, hashlib, os, re

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SC = "1.2.840.10008.5.1.4.1.1.7"
PIXEL_MM, SECTION_MM = 0.000004, 0.00005


def uid(*parts):
    """A 2.25 UID from a hash of the parts: the same input gives the same UID."""
    return generate_uid(prefix=None, entropy_srcs=list(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--description", default="ISBI 2012 EM sections")
    a = ap.parse_args()
    names = sorted((f for f in os.listdir(a.images) if re.fullmatch(r"\d+\.png", f)), key=lambda f: int(f[:-4]))
    names = names[a.first:None if a.count is None else a.first + a.count]
    if not names:
        raise SystemExit(f"no numbered PNG images in {a.images}")
    key = hashlib.sha256("|".join([os.path.abspath(a.images)] + names).encode()).hexdigest()
    study, series, frame = uid(key, "study"), uid(key, "series"), uid(key, "frame")
    os.makedirs(a.out, exist_ok=True)
    for n, name in enumerate(names):
        pixels = np.asarray(Image.open(os.path.join(a.images, name)).convert("L"), dtype=np.uint8)
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = SC
        ds.file_meta.MediaStorageSOPInstanceUID = uid(key, name)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID, ds.SOPInstanceUID = SC, ds.file_meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID = "ISBI2012^EM", "ISBI2012-EM"
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "", "", "ISBI2012", "", ""
        ds.StudyDescription, ds.SeriesDescription = "ISBI 2012 EM segmentation challenge", a.description
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "OT", 1, a.first + n + 1
        ds.ConversionType = "WSD"
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.PositionReferenceIndicator = ""
        ds.PatientOrientation, ds.Laterality = "", ""
        ds.ImagePositionPatient = [0, 0, round((a.first + n) * SECTION_MM, 9)]  # DS holds 16 characters
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [PIXEL_MM, PIXEL_MM]
        ds.SliceThickness = SECTION_MM
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = pixels.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = pixels.tobytes()
        ds.is_little_endian, ds.is_implicit_VR = True, False
        pydicom.dcmwrite(os.path.join(a.out, f"{os.path.splitext(name)[0]}.dcm"), ds, write_like_original=False)
    print(f"{len(names)} sections -> {a.out} (series {series})")


if __name__ == "__main__":
    main()
