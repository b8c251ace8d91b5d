import type { NaturalDataset } from "../dicom/dataset.js";
import { DelineateError } from "../errors.js";
import type { ModelLabel } from "../models/manifest.js";
import type { LabelMap, Volume } from "../volume/volume.js";

/** Patient and study attributes every derived object copies exactly from its source. Type 2 ones must be present. */
const COPIED_TYPE2 = [
  "PatientName",
  "PatientID",
  "PatientBirthDate",
  "PatientSex",
  "StudyDate",
  "StudyTime",
  "ReferringPhysicianName",
  "StudyID",
  "AccessionNumber",
];
const COPIED_OPTIONAL = [
  "SpecificCharacterSet",
  "IssuerOfPatientID",
  "OtherPatientIDsSequence",
  "PatientAge",
  "PatientSize",
  "PatientWeight",
  "StudyDescription",
  "IssuerOfAccessionNumberSequence",
  "PatientIdentityRemoved",
  "DeidentificationMethod",
];

export function copyPatientAndStudy(source: NaturalDataset): NaturalDataset {
  const out: NaturalDataset = { StudyInstanceUID: source.StudyInstanceUID };
  const vr: Record<string, string> = {};
  for (const k of COPIED_TYPE2) out[k] = source[k] ?? "";
  for (const k of COPIED_OPTIONAL) if (source[k] !== undefined && source[k] !== null) out[k] = source[k];
  for (const k of [...COPIED_TYPE2, ...COPIED_OPTIONAL]) if (source._vrMap?.[k]) vr[k] = source._vrMap[k];
  if (Object.keys(vr).length) out._vrMap = vr;
  return out;
}

/** DICOM DA and TM of a moment, in local time as modalities write them. */
export function dicomDateTime(d: Date): { date: string; time: string } {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return {
    date: `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}`,
    time: `${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`,
  };
}

/**
 * A decimal string of at most 16 characters (DS), as precise as that allows.
 * @throws DelineateError DLN_ERR_OUTPUT_INVALID for NaN or ±Infinity (a DS has no spelling for them).
 */
export function ds(x: number): string {
  if (!Number.isFinite(x))
    throw new DelineateError("DLN_ERR_OUTPUT_INVALID", `not a finite number: ${x}`, { value: String(x) });
  // the shortest text that reads back as x: when it fits, it is what the loop below returns at p = 16 (x rounded to
  // 16 digits reads back as x), without the rounding (an RTSTRUCT writes millions of these)
  const shortest = String(x);
  if (shortest.length <= 16) return shortest;
  for (let p = 16; p > 0; p--) {
    const s = String(Number(x.toPrecision(p)));
    if (s.length <= 16) return s;
  }
  throw new DelineateError("DLN_ERR_OUTPUT_INVALID", `cannot write ${x} as a DS`, { value: String(x) });
}

/** sRGB (0-255) to DICOM's scaled CIELab (RecommendedDisplayCIELabValue, D65 white). */
export function rgbToDicomLab([r, g, b]: readonly [number, number, number]): [number, number, number] {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const [R, G, B] = [lin(r), lin(g), lin(b)];
  const X = (0.4124 * R + 0.3576 * G + 0.1805 * B) / 0.95047;
  const Y = 0.2126 * R + 0.7152 * G + 0.0722 * B;
  const Z = (0.0193 * R + 0.1192 * G + 0.9505 * B) / 1.08883;
  const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t + 16) / 116);
  const L = 116 * f(Y) - 16,
    a = 500 * (f(X) - f(Y)),
    bb = 200 * (f(Y) - f(Z));
  const clamp = (v: number) => Math.max(0, Math.min(65535, Math.round(v)));
  return [clamp((L * 65535) / 100), clamp(((a + 128) * 65535) / 255), clamp(((bb + 128) * 65535) / 255)];
}

/** Who wrote a derived object (General and Enhanced General Equipment). */
export interface Equipment {
  manufacturer: string;
  modelName: string;
  deviceSerialNumber: string;
  softwareVersion: string;
  institutionName?: string;
}

/** What every output builder (SEG, SR, RTSTRUCT, overlay) takes. */
export interface DerivedObjectInput {
  /** the source volume: its grid is the output's grid, its slices the output's references */
  volume: Volume;
  /** one source instance, for patient and study attributes */
  source: NaturalDataset;
  labels: LabelMap;
  /** the model's labels; those present in `labels` become segments / ROIs, numbered 1..N in this order */
  segmentLabels: readonly ModelLabel[];
  uids: { seriesInstanceUID: string; sopInstanceUID: string };
  series: { number: number; description: string };
  equipment: Equipment;
  now: Date;
}

/** The refusal an output builder throws: DLN_ERR_OUTPUT_INVALID naming the object (`what`) and the series. */
export function outputInvalid(
  what: string,
  volume: Pick<Volume, "seriesInstanceUID">,
): (why: string) => DelineateError {
  return (why) =>
    new DelineateError("DLN_ERR_OUTPUT_INVALID", `${what} for series ${volume.seriesInstanceUID}: ${why}`, {
      seriesInstanceUID: volume.seriesInstanceUID,
    });
}

/** One Referenced SOP Class / Instance UID pair per source slice, in slice order: how every output cites its source. */
export function sourceImageReferences(
  volume: Pick<Volume, "slices">,
): { ReferencedSOPClassUID: string; ReferencedSOPInstanceUID: string }[] {
  return volume.slices.map((s) => ({
    ReferencedSOPClassUID: s.sopClassUID,
    ReferencedSOPInstanceUID: s.sopInstanceUID,
  }));
}

/**
 * The refusal an output builder throws, naming the object and the series, after the checks every grid-based output
 * needs: the label map on the volume's grid, one source reference per slice.
 * @throws DelineateError DLN_ERR_OUTPUT_INVALID when either fails.
 */
export function checkedGrid(
  input: Pick<DerivedObjectInput, "volume" | "labels">,
  what: string,
): (why: string) => DelineateError {
  const { volume, labels } = input;
  const invalid = outputInvalid(what, volume);
  const [nx, ny, nz] = volume.dims;
  if (labels.dims.some((d, i) => d !== volume.dims[i]) || labels.data.length !== nx * ny * nz)
    throw invalid("label map and volume grids differ");
  if (volume.slices.length !== nz) throw invalid("volume has a slice count different from its references");
  return invalid;
}

/** What every derived object shares: patient and study copied from the source, SOP, series, equipment, instance dates. */
export function derivedObjectHeader(o: {
  source: NaturalDataset;
  sopClassUID: string;
  modality: string;
  uids: { seriesInstanceUID: string; sopInstanceUID: string };
  series: { number: number; description: string };
  equipment: Equipment;
  now: Date;
}): NaturalDataset {
  const { date, time } = dicomDateTime(o.now);
  return {
    ...copyPatientAndStudy(o.source),
    SOPClassUID: o.sopClassUID,
    SOPInstanceUID: o.uids.sopInstanceUID,
    Modality: o.modality,
    SeriesInstanceUID: o.uids.seriesInstanceUID,
    SeriesNumber: o.series.number,
    SeriesDescription: o.series.description,
    SeriesDate: date,
    SeriesTime: time,
    InstanceNumber: 1,
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    Manufacturer: o.equipment.manufacturer,
    ManufacturerModelName: o.equipment.modelName,
    DeviceSerialNumber: o.equipment.deviceSerialNumber,
    SoftwareVersions: o.equipment.softwareVersion,
    ...(o.equipment.institutionName ? { InstitutionName: o.equipment.institutionName } : {}),
  };
}
