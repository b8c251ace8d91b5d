import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { str } from "../../src/dicom/dataset.js";
import { loadModelPackage } from "../../src/models/loadModel.js";
import { DicomWebClient } from "../../src/pacs/dicomweb.js";
import { type NodeProcess, startNodeProcess } from "../helpers/nodeProcess.js";
import { startOrthanc, type TestOrthanc, waitFor } from "../helpers/orthanc.js";
import { dciodvfy, exec, pixelmedSRValidator, python, ROOT, storescu, tempDir } from "../helpers/tools.js";

/**
 * One OpenKBP validation patient (shipped in test/fixtures, see its README for why and the licence) through the real
 * DICOM path: converted to a CT series by training/openkbp_to_dicom.py, sent by C-STORE to a real Orthanc, noticed
 * by `delineate serve` running the hn-oar model, and its SEG, SR and RTSTRUCT read back by independent tools.
 */
const FIXTURE = path.join(ROOT, "test", "fixtures", "openkbp-pt_201");
/**
 * The model packages' folder: the repository's, or HN_OAR_MODELS_DIR's (e.g. the folder `evaluate_hn_oar.py --dicom
 * --work DIR` exports a checkpoint into, DIR/models), to try new weights before they replace models/hn-oar.
 */
const MODELS = process.env.HN_OAR_MODELS_DIR ?? path.join(ROOT, "models");

/** AAPM TG-263 standard names of the structures hn-oar outlines (TG-263 table, not the manifest) and their types. */
const TG263: Record<string, string> = {
  Brainstem: "ORGAN",
  SpinalCord: "ORGAN",
  Parotid_R: "ORGAN",
  Parotid_L: "ORGAN",
  Esophagus: "ORGAN",
  Larynx: "ORGAN",
  Bone_Mandible: "ORGAN",
  External: "EXTERNAL",
};

/**
 * pydicom, scipy and plastimatch's masks only: the SEG unpacked onto the CT's slices (sorted by position, as
 * plastimatch's grid; each frame put on the slice its source reference names), plastimatch's raster of each RTSTRUCT
 * ROI (the MetaImage header's size and origin checked against the CT), each ROI's Dice against the SEG's label map
 * (External against every labelled voxel: the body outline must contain the organs), the External raster's shape
 * per slice, and the SR's volumes against the SEG's voxel counts.
 */
const CHECK = `
import glob, json, os, sys
import numpy as np, pydicom, scipy.ndimage as ndi
seg_path, sr_path, rt_path, ct_dir, mha_dir = sys.argv[1:6]
cts = sorted((pydicom.dcmread(f, stop_before_pixels=True) for f in glob.glob(os.path.join(ct_dir, "*.dcm"))),
             key=lambda d: float(d.ImagePositionPatient[2]))
slice_of = {d.SOPInstanceUID: k for k, d in enumerate(cts)}
seg = pydicom.dcmread(seg_path)
nz, ny, nx = len(cts), int(seg.Rows), int(seg.Columns)
number_of = {s.SegmentLabel: int(s.SegmentNumber) for s in seg.SegmentSequence}
frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), ny, nx) > 0
labels = np.zeros((nz, ny, nx), np.uint8)
overlap = 0
for f, px in zip(seg.PerFrameFunctionalGroupsSequence, frames):
    k = slice_of[f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
    overlap += int((labels[k][px] != 0).sum())
    labels[k][px] = int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
sy, sx = (float(v) for v in cts[0].PixelSpacing)  # (between rows, between columns)
sz = abs(float(cts[1].ImagePositionPatient[2]) - float(cts[0].ImagePositionPatient[2]))
voxel_ml = sx * sy * sz / 1000
rt = pydicom.dcmread(rt_path)
rois = {r.ROINumber: r.ROIName for r in rt.StructureSetROISequence}
types = {rois[o.ReferencedROINumber]: o.RTROIInterpretedType for o in rt.RTROIObservationsSequence}
masks = {}
for f in sorted(glob.glob(os.path.join(mha_dir, "*.mha"))):
    data = open(f, "rb").read()
    end = data.index(b"ElementDataFile = LOCAL\\n") + len(b"ElementDataFile = LOCAL\\n")
    header = dict(l.split(" = ", 1) for l in data[:end].decode().strip().split("\\n"))
    assert [int(v) for v in header["DimSize"].split()] == [nx, ny, nz], (f, header["DimSize"])
    offset = [float(v) for v in header["Offset"].split()]
    assert np.allclose(offset, [float(v) for v in cts[0].ImagePositionPatient], atol=1e-2), (offset, cts[0].ImagePositionPatient)
    assert header["ElementType"] == "MET_UCHAR"
    masks[os.path.basename(f)[:-4]] = np.frombuffer(data[end:], dtype=np.uint8).reshape(nz, ny, nx) > 0
def dice(a, b):
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))
out = {"segments": sorted(number_of), "rois": sorted(rois.values()), "types": types, "overlapVoxels": overlap,
       "rasterised": sorted(masks), "dice": {}, "voxels": {}, "sr": {}}
for name, m in masks.items():
    want = labels > 0 if types.get(name) == "EXTERNAL" else labels == number_of[name]
    out["dice"][name] = round(dice(m, want), 5)
    out["voxels"][name] = [int(m.sum()), int(want.sum())]
ext = masks.get("External")
if ext is not None:
    # the body-outline test's reference: HU > -500, holes filled per slice, largest 3D component
    hu = np.stack([pydicom.dcmread(d.filename).pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in cts])
    ref = hu > -500
    for z in range(nz): ref[z] = ndi.binary_fill_holes(ref[z])
    lab, n = ndi.label(ref)
    if n > 1: ref = lab == 1 + int(np.argmax(ndi.sum(ref, lab, range(1, n + 1))))
    rows = [z for z in range(nz) if ext[z].any()]
    pieces = {z: ndi.label(ext[z])[1] for z in rows}
    out["externalSlices"] = len(rows)
    out["externalSeveralPieces"] = {z: sorted(ndi.sum(ext[z], ndi.label(ext[z])[0], range(1, p + 1)).astype(int).tolist())
                                    for z, p in pieces.items() if p > 1}
    out["pixelAreaMm2"] = sx * sy
    out["externalSplitWhereBodyIsOnePiece"] = [z for z in rows if pieces[z] != 1 and ndi.label(ref[z])[1] == 1]
    out["externalSlicesWithHoles"] = [z for z in rows if not np.array_equal(ndi.binary_fill_holes(ext[z]), ext[z])]
    out["organVoxelsOutsideExternal"] = {n: int((m & ~ext).sum()) for n, m in masks.items() if n != "External"}
sr = pydicom.dcmread(sr_path)
for group in sr.ContentSequence[-1].ContentSequence:
    items = {i.ConceptNameCodeSequence[0].CodeValue: i for i in group.ContentSequence}
    name = items["112039"].TextValue
    segment = int(items["121191"].ReferencedSOPSequence[0].ReferencedSegmentNumber)
    ml = float(items["118565006"].MeasuredValueSequence[0].NumericValue)
    out["sr"][name] = {"ml": ml, "segment": segment, "segML": float((labels == number_of[name]).sum() * voxel_ml),
                       "unit": items["118565006"].MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue}
print(json.dumps(out))
`;

describe("hn-oar end to end: an OpenKBP patient sent to a real Orthanc comes back with SEG, SR and RTSTRUCT", {
  concurrency: false,
}, () => {
  let orthanc: TestOrthanc;
  let node: NodeProcess;
  let pacs: DicomWebClient;
  let work: string;
  let study: string;
  let sentAt: number;
  const files: Record<string, string> = {};

  before(async () => {
    work = tempDir("hn-oar-");
    // the converter the evaluation and the demo use, on the shipped patient
    await exec("/usr/bin/python3", [
      path.join(ROOT, "training", "openkbp_to_dicom.py"),
      "--patient",
      FIXTURE,
      "--out",
      path.join(work, "ct"),
    ]);
    const first = await python(
      `import glob, json, sys, pydicom
d = pydicom.dcmread(sorted(glob.glob(sys.argv[1] + "/*.dcm"))[0], stop_before_pixels=True)
print(json.dumps(d.StudyInstanceUID))`,
      [path.join(work, "ct")],
    );
    study = first;
    orthanc = await startOrthanc();
    pacs = new DicomWebClient({
      url: orthanc.url,
      dicomWebRoot: "/dicom-web",
      username: orthanc.username,
      password: orthanc.password,
      timeoutMs: 60_000,
    });
    mkdirSync(path.join(work, "node"));
    node = await startNodeProcess(orthanc, path.join(work, "node", "data"), {
      logFile: path.join(work, "node", "node.log"),
      configure: (c) => {
        c.model = { dir: MODELS, id: "hn-oar" };
      },
    });
    sentAt = Date.now();
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "ct"));
  });

  after(async () => {
    await node?.stop();
    await orthanc?.stop();
  });

  it("writes SEG, SR and RTSTRUCT into the patient's study, each with no dciodvfy error", {
    timeout: 900_000,
  }, async () => {
    const [job] = await waitFor(`hn-oar's job for study ${study}`, () => node.settled(study), 840_000, 1000);
    assert.equal(job?.state, "done", `job: ${JSON.stringify(job)}`);
    assert.ok(job.kind === "segment");
    assert.equal(job.segment?.modelId, "hn-oar");
    console.log(
      `# hn-oar job: ${((Date.now() - sentAt) / 1000).toFixed(0)} s from C-STORE to done; seconds per stage ${JSON.stringify(job.timings)}`,
    );
    for (const modality of ["SEG", "SR", "RTSTRUCT"]) {
      const series = (await pacs.searchSeries(study)).filter((s) => str(s, "Modality") === modality);
      assert.equal(series.length, 1, `exactly one ${modality} series in the study`);
      const [bytes] = await pacs.retrieveSeries(study, str(series[0]!, "SeriesInstanceUID"));
      const file = path.join(work, `${modality.toLowerCase()}.dcm`);
      writeFileSync(file, bytes!);
      const verdict = await dciodvfy(file);
      assert.deepEqual(verdict.errors, [], `${modality} dciodvfy errors:\n${verdict.errors.join("\n")}`);
      console.log(`# ${modality}: dciodvfy 0 errors, ${verdict.warnings.length} warnings`);
      files[modality] = file;
    }
    assert.deepEqual((await pixelmedSRValidator(files.SR!)).errors, [], "PixelMed's SR validator");
  });

  it("RTSTRUCT: TG-263 names, plastimatch's raster of each ROI matches the SEG's label map (Dice >= 0.97), External holding every organ, with no hole, one shape where the body is; SR: each organ's volume", {
    timeout: 300_000,
  }, async () => {
    assert.ok(files.RTSTRUCT, "the outputs were fetched");
    const ctDir = path.join(work, "ct"),
      masks = path.join(work, "rt-masks");
    await exec("plastimatch", [
      "convert",
      "--input",
      files.RTSTRUCT!,
      "--referenced-ct",
      ctDir,
      "--output-prefix",
      masks,
      "--prefix-format",
      "mha",
    ]);
    const r = await python(CHECK, [files.SEG!, files.SR!, files.RTSTRUCT!, ctDir, masks]);
    console.log(`# hn-oar RTSTRUCT vs SEG through plastimatch, Dice per ROI: ${JSON.stringify(r.dice)}`);
    console.log(`# voxels [RTSTRUCT raster, SEG]: ${JSON.stringify(r.voxels)}`);
    console.log(`# SR volumes: ${JSON.stringify(r.sr)}`);

    assert.equal(r.overlapVoxels, 0, "the SEG's segments do not overlap (one label per voxel)");
    for (const name of r.rois) assert.ok(name in TG263, `ROI "${name}" is not a TG-263 name of this model`);
    for (const [name, type] of Object.entries(r.types)) assert.equal(type, TG263[name], `${name}'s interpreted type`);
    assert.deepEqual(r.rois, r.segments, "one ROI per segment of the SEG, named as it");
    assert.ok(r.rois.includes("External"), "the External is outlined");
    assert.deepEqual(r.rasterised, r.rois, "plastimatch rasterised every ROI");
    for (const [name, d] of Object.entries(r.dice as Record<string, number>))
      assert.ok(d >= 0.97, `${name}: RTSTRUCT raster vs SEG Dice ${d}`);

    // one shape wherever the body is one piece in the slice (an ear or a shoulder can be a piece of its own)
    console.log(
      `# External: ${r.externalSlices} slices; several pieces (their sizes in voxels) on ${JSON.stringify(r.externalSeveralPieces)}`,
    );
    assert.deepEqual(r.externalSplitWhereBodyIsOnePiece, [], "slices where the body is one piece and the External not");
    // and no islands: a slice's pieces besides its largest are at least the manifest's minPieceMm2
    const least = loadModelPackage(MODELS, "hn-oar").manifest.postprocessing.external!.minPieceMm2 / r.pixelAreaMm2;
    for (const [z, sizes] of Object.entries(r.externalSeveralPieces as Record<string, number[]>))
      assert.ok(
        sizes.slice(0, -1).every((n) => n >= least),
        `slice ${z}: pieces of ${sizes.join(", ")} voxels`,
      );
    assert.deepEqual(r.externalSlicesWithHoles, [], "slices where the External has a hole");
    for (const [name, n] of Object.entries(r.organVoxelsOutsideExternal as Record<string, number>))
      assert.equal(n, 0, `${name}: voxels outside the External`);

    // the SR: one measurement group per segment, its volume in mL the segment's voxels × the CT's voxel volume
    assert.deepEqual(Object.keys(r.sr).sort(), r.segments, "the SR lists every segment");
    for (const [name, v] of Object.entries(r.sr as Record<string, { ml: number; segML: number; unit: string }>)) {
      assert.equal(v.unit, "mL", `${name}: UCUM unit`);
      assert.ok(Math.abs(v.ml - v.segML) <= 1e-6 * v.segML, `${name}: SR ${v.ml} mL, SEG ${v.segML} mL`);
    }
  });

  it("finds all seven organs and the External on this patient (all seven contoured)", { timeout: 10_000 }, async () => {
    assert.ok(files.SEG, "the outputs were fetched");
    const names = await python(
      `import json, sys, pydicom
print(json.dumps(sorted(s.SegmentLabel for s in pydicom.dcmread(sys.argv[1]).SegmentSequence)))`,
      [files.SEG!],
    );
    assert.deepEqual(names, Object.keys(TG263).sort());
  });
});
