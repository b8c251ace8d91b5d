import { cpSync, readdirSync } from "node:fs";
import path from "node:path";
import { newUid } from "../src/outputs/uid.js";
import { exec } from "./tools.js";

export interface PreparedStudy {
  dir: string;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  patientName: string;
  patientID: string;
}

/**
 * The real abdomen CT (totalseg-ct-abdomen-j2k) as a modality would send it. Upstream anonymisation
 * emptied SOPClassUID, SOPInstanceUID and the study/series UIDs, so no PACS can store the files as they
 * are (storescu reports "No presentation context" and still exits 0). On a temporary copy, dcmtk's dcmodify
 * restores SOPClass/SOPInstance from the files' own meta header, sets one new study and series UID, and
 * gives the patient a name and ID for the no-PHI-in-logs check. Then GDCM's gdcmconv decompresses the JPEG
 * 2000 pixel data (lossless, so the values are unchanged): Debian's Orthanc 1.10 with GDCM 3.0.21 segfaulted
 * in some runs (a ~130 KB stack frame in libgdcmMSFF, in an HTTP worker thread) when transcoding these files
 * for WADO-RS, taking the PACS down mid-test. Geometry is untouched.
 */
export async function prepareAbdomenStudy(source: string, dest: string): Promise<PreparedStudy> {
  cpSync(source, dest, { recursive: true });
  const study = {
    dir: dest,
    studyInstanceUID: newUid("2.25"),
    seriesInstanceUID: newUid("2.25"),
    patientName: "Abdomen^Testpatient",
    patientID: "DLN-TEST-4711",
  };
  for (const f of readdirSync(dest)) {
    const sop = f.replace(/^CT\./, "");
    await exec("dcmodify", [
      "-nb",
      "-i",
      "(0008,0016)=1.2.840.10008.5.1.4.1.1.2",
      "-i",
      `(0008,0018)=${sop}`,
      "-i",
      `(0020,000D)=${study.studyInstanceUID}`,
      "-i",
      `(0020,000E)=${study.seriesInstanceUID}`,
      "-i",
      `(0010,0010)=${study.patientName}`,
      "-i",
      `(0010,0020)=${study.patientID}`,
      path.join(dest, f),
    ]);
    await exec("gdcmconv", ["--raw", path.join(dest, f), path.join(dest, f)]);
  }
  return study;
}
