import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type NaturalDataset, writePart10 } from "../dicom/dataset.js";
import { SopClass } from "../dicom/uids.js";
import { dicomDateTime, ds } from "../outputs/attributes.js";
import { newUid } from "../outputs/uid.js";

export interface PhantomOptions {
  size: number;
  slices: number;
  pixelSpacing: number;
  sliceSpacing: number;
  patientName: string;
  patientID: string;
  /** to add a series to an existing study (and its frame of reference) */
  studyInstanceUID?: string;
  frameOfReferenceUID?: string;
  seriesDescription?: string;
  seriesNumber?: number;
}

/**
 * Writes a synthetic thorax CT series (an elliptical body of soft tissue with two lungs and a spine, in
 * air, on a table) as single-frame CT Image Storage files: the demo's sample when ../shared/data is absent,
 * and a fixture whose right answer is known.
 */
export function writePhantomSeries(
  outDir: string,
  o: PhantomOptions,
): { files: string[]; studyInstanceUID: string; seriesInstanceUID: string; frameOfReferenceUID: string } {
  mkdirSync(outDir, { recursive: true });
  const study = o.studyInstanceUID ?? newUid("2.25"),
    series = newUid("2.25"),
    frame = o.frameOfReferenceUID ?? newUid("2.25");
  const n = o.size,
    half = (n * o.pixelSpacing) / 2;
  const studyDate = dicomDateTime(new Date()).date; // acquired today, as a modality would say
  const files: string[] = [];
  for (let k = 0; k < o.slices; k++) {
    const z = -k * o.sliceSpacing;
    const pixels = new Int16Array(n * n);
    const taper = 1 - 0.25 * Math.abs(k / Math.max(1, o.slices - 1) - 0.5);
    for (let j = 0; j < n; j++) {
      const y = -half + (j + 0.5) * o.pixelSpacing;
      for (let i = 0; i < n; i++) {
        const x = -half + (i + 0.5) * o.pixelSpacing;
        let hu = -1000;
        if ((x / (160 * taper)) ** 2 + ((y - 10) / (110 * taper)) ** 2 <= 1) hu = 40;
        for (const s of [-1, 1]) if (((x - s * 65) / 45) ** 2 + ((y - 0) / 70) ** 2 <= 1) hu = -850;
        if ((x / 18) ** 2 + ((y - 75) / 18) ** 2 <= 1) hu = 700;
        if (y > 135 && y < 150 && Math.abs(x) < 200) hu = 200; // the table, apart from the body
        pixels[j * n + i] = hu + 1024 + Math.round(Math.sin(i * 12.9898 + j * 78.233 + k) * 10);
      }
    }
    const sop = newUid("2.25");
    const dataset: NaturalDataset = {
      SpecificCharacterSet: "ISO_IR 100",
      SOPClassUID: SopClass.CTImageStorage,
      SOPInstanceUID: sop,
      ImageType: ["ORIGINAL", "PRIMARY", "AXIAL"],
      Modality: "CT",
      Manufacturer: "Delineate phantom",
      PatientName: { Alphabetic: o.patientName },
      PatientID: o.patientID,
      PatientBirthDate: "19700101",
      PatientSex: "O",
      StudyInstanceUID: study,
      StudyDate: studyDate,
      StudyTime: "120000",
      StudyID: "1",
      AccessionNumber: "",
      ReferringPhysicianName: "",
      StudyDescription: "Delineate phantom",
      SeriesInstanceUID: series,
      SeriesNumber: o.seriesNumber ?? 1,
      SeriesDescription: o.seriesDescription ?? "Phantom thorax",
      Laterality: "",
      BodyPartExamined: "CHEST",
      AcquisitionNumber: 1,
      InstanceNumber: k + 1,
      FrameOfReferenceUID: frame,
      PositionReferenceIndicator: "",
      PatientPosition: "HFS",
      ImagePositionPatient: [ds(-half + o.pixelSpacing / 2), ds(-half + o.pixelSpacing / 2), ds(z)],
      ImageOrientationPatient: ["1", "0", "0", "0", "1", "0"],
      SliceThickness: ds(o.sliceSpacing),
      PixelSpacing: [ds(o.pixelSpacing), ds(o.pixelSpacing)],
      SamplesPerPixel: 1,
      PhotometricInterpretation: "MONOCHROME2",
      Rows: n,
      Columns: n,
      BitsAllocated: 16,
      BitsStored: 16,
      HighBit: 15,
      PixelRepresentation: 1,
      RescaleIntercept: "-1024",
      RescaleSlope: "1",
      KVP: "120",
      PixelData: [pixels.buffer],
      _vrMap: { PixelData: "OW" },
    };
    const file = path.join(outDir, `CT${String(k + 1).padStart(4, "0")}.dcm`);
    writeFileSync(file, writePart10(dataset));
    files.push(file);
  }
  return { files, studyInstanceUID: study, seriesInstanceUID: series, frameOfReferenceUID: frame };
}
