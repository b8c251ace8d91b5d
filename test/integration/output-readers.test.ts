import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { parsePart10, writePart10 } from "../../src/dicom/dataset.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { InferenceWorker } from "../../src/inference/inferenceWorker.js";
import { createLogger } from "../../src/log.js";
import { loadModelPackage } from "../../src/models/loadModel.js";
import type { ModelLabel } from "../../src/models/manifest.js";
import { encodeOutputs } from "../../src/outputs/encodeOutputs.js";
import { buildMeasurementReport } from "../../src/outputs/measurementReport.js";
import { buildOverlay } from "../../src/outputs/overlay.js";
import { buildStructureSet } from "../../src/outputs/structureSet.js";
import { newUid } from "../../src/outputs/uid.js";
import { seriesToVolume } from "../../src/volume/seriesToVolume.js";
import { prepareAbdomenStudy } from "../helpers/data.js";
import { rasteriseAndCompare } from "../helpers/plastimatch.js";
import { gappedLabelSeries, testSegmentation, uniformSeries } from "../helpers/segFixture.js";
import { dciodvfy, exec, pixelmedSRValidator, python, ROOT, sharedData, tempDir } from "../helpers/tools.js";

const label = (value: number, name: string): ModelLabel => ({
  value,
  name,
  color: [value * 60, 100, 200],
  category: { code: "123037004", scheme: "SCT", meaning: "Anatomical Structure" },
  type: {
    code: ["10200004", "39607008", "64033007"][value - 1]!,
    scheme: "SCT",
    meaning: ["Liver", "Lung", "Kidney"][value - 1]!,
  },
  rtInterpretedType: "ORGAN",
});

describe("SEG read back by independent tools", () => {
  it("odd Rows×Columns, three segments with gaps: dciodvfy passes and pydicom unpacks our label map exactly", async () => {
    // segment 1 on slices 1-4 with slice 2 empty inside its extent; segment 3 on slice 5 only; segment 2 (label 2) absent
    const { series, volume, labels } = gappedLabelSeries();
    const [cols, rows] = [volume.dims[0], volume.dims[1]];
    const seg = testSegmentation({
      volume,
      source: series[0]!.dataset,
      labels: { dims: volume.dims, data: labels },
      segmentLabels: [
        label(1, "Liver"),
        label(2, "Lung"),
        { ...label(3, "Kidney"), laterality: { code: "7771000", scheme: "SCT", meaning: "Left" } },
      ],
    });
    assert.deepEqual(
      [...seg.segmentNumbers],
      [
        [1, 1],
        [3, 2],
      ],
      "absent labels get no segment; numbering stays consecutive",
    );
    assert.equal(seg.frameCount, 4 + 1, "segment 1 keeps its empty slice inside the extent");

    const dir = tempDir("seg-");
    const file = path.join(dir, "seg.dcm");
    writeFileSync(file, writePart10(seg.dataset));
    const verdict = await dciodvfy(file);
    assert.deepEqual(verdict.errors, [], verdict.errors.join("\n"));

    const read = await python(
      `
import json, sys, pydicom
d = pydicom.dcmread(sys.argv[1])
px = d.pixel_array.reshape(int(d.NumberOfFrames), d.Rows, d.Columns)
open(sys.argv[2], "wb").write(px.astype("uint8").tobytes())
lat = [[m.CodeValue for m in getattr(s.SegmentedPropertyTypeCodeSequence[0], "SegmentedPropertyTypeModifierCodeSequence", [])] for s in d.SegmentSequence]
print(json.dumps({"laterality": lat, "frames": [[int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber), f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID] for f in d.PerFrameFunctionalGroupsSequence],
  "bits": [d.BitsAllocated, d.BitsStored], "length": len(d.PixelData)}))`,
      [file, path.join(dir, "frames.raw")],
    );
    assert.deepEqual(read.laterality, [[], ["7771000"]], "the left kidney's laterality rides on its property type");
    assert.equal(read.length, Math.ceil((cols * rows * 5) / 8) + (Math.ceil((cols * rows * 5) / 8) % 2));
    const frames = new Uint8Array(readFileSync(path.join(dir, "frames.raw")));
    const plane = cols * rows;
    const labelValueOf = new Map([
      [1, 1],
      [2, 3],
    ]);
    const sliceOf = new Map(volume.slices.map((s, k) => [s.sopInstanceUID, k]));
    read.frames.forEach(([segment, sop]: [number, string], f: number) => {
      const k = sliceOf.get(sop)!;
      const want = labels.subarray(k * plane, (k + 1) * plane).map((l) => (l === labelValueOf.get(segment) ? 1 : 0));
      assert.deepEqual(
        frames.subarray(f * plane, (f + 1) * plane),
        want,
        `frame ${f + 1}: segment ${segment} on slice ${k}`,
      );
    });
  });
});

describe("LABELMAP SEG (Supplement 243) read back by pydicom", () => {
  it("one 8-bit frame per slice in the segments' extent, each pixel its segment number, segment 0 the background", async () => {
    const [cols, rows, nz] = [9, 7, 6];
    const { series, volume } = uniformSeries([cols, rows, nz], [0, 0], 2);
    const labels = new Uint8Array(cols * rows * nz);
    for (let i = 0; i < labels.length; i++) {
      const k = Math.floor(i / (cols * rows));
      if (k >= 1 && k <= 4) labels[i] = i % 4 === 0 ? 1 : i % 5 === 0 ? 3 : 0; // slices 1-4; label 2 absent
    }
    const seg = testSegmentation({
      volume,
      source: series[0]!.dataset,
      labels: { dims: volume.dims, data: labels },
      segmentLabels: [label(1, "Liver"), label(2, "Lung"), label(3, "Kidney")],
      series: { number: 46, description: "labelmap" },
      type: "LABELMAP",
    });
    const dir = tempDir("labelmap-");
    const file = path.join(dir, "seg.dcm");
    writeFileSync(file, writePart10(seg.dataset));
    // Debian's dciodvfy (2022) predates Supplement 243: it does not know the IOD, and its BINARY rule that segments
    // count from 1 flags the background segment 0 that LABELMAP allows. Those must be its only errors.
    const verdict = await dciodvfy(file);
    const known = [/Information Object Not found/, /SegmentNumber not monotonically increasing .* SegmentNumber of 0$/];
    assert.ok(
      verdict.errors.every((e) => known.some((k) => k.test(e))),
      verdict.errors.join("\n"),
    );
    const read = await python(
      `
import json, sys, pydicom
d = pydicom.dcmread(sys.argv[1])
px = d.pixel_array.reshape(int(d.NumberOfFrames), d.Rows, d.Columns)
print(json.dumps({"sop": d.SOPClassUID, "type": d.SegmentationType, "bits": d.BitsAllocated,
  "segments": [[int(s.SegmentNumber), s.SegmentLabel] for s in d.SegmentSequence],
  "frames": [f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID for f in d.PerFrameFunctionalGroupsSequence],
  "segId": any(hasattr(f, "SegmentIdentificationSequence") for f in d.PerFrameFunctionalGroupsSequence),
  "pixels": px.flatten().tolist()}))`,
      [file],
    );
    assert.deepEqual([read.sop, read.type, read.bits], ["1.2.840.10008.5.1.4.1.1.66.7", "LABELMAP", 8]);
    assert.deepEqual(read.segments, [
      [0, "Background"],
      [1, "Liver"],
      [2, "Kidney"],
    ]);
    assert.equal(read.segId, false, "no per-frame segment identification in a LABELMAP");
    assert.deepEqual(
      read.frames,
      [1, 2, 3, 4].map((k) => volume.slices[k]!.sopInstanceUID),
    );
    const plane = cols * rows;
    const expected = [1, 2, 3, 4].flatMap((k) =>
      [...labels.subarray(k * plane, (k + 1) * plane)].map((v) => (v === 3 ? 2 : v)),
    );
    assert.deepEqual(read.pixels, expected);
  });
});

describe("SR TID 1500 read back by independent tools", () => {
  it("has one measurement group per SEG segment whose volume equals the SEG's voxels × voxel volume; dciodvfy and PixelMed pass it", async () => {
    const [cols, rows, nz] = [11, 9, 5];
    const { series, volume } = uniformSeries([cols, rows, nz], [10, -20], 3, { Modality: "CT" });
    const labels = new Uint8Array(cols * rows * nz);
    for (let i = 0; i < labels.length; i++) labels[i] = i % 7 === 0 ? 1 : i % 11 === 0 ? 3 : 0;
    const equipment = {
      manufacturer: "Delineate",
      modelName: "Delineate",
      deviceSerialNumber: "t",
      softwareVersion: "0",
    };
    const segmentLabels = [label(1, "Liver"), label(2, "Lung"), label(3, "Kidney")];
    const seg = testSegmentation({
      volume,
      source: series[0]!.dataset,
      labels: { dims: volume.dims, data: labels },
      segmentLabels,
      equipment,
      now: new Date(),
    });
    const sr = buildMeasurementReport({
      volume,
      source: series[0]!.dataset,
      labels: { dims: volume.dims, data: labels },
      segmentLabels,
      segmentation: seg,
      uids: {
        seriesInstanceUID: newUid("2.25"),
        sopInstanceUID: newUid("2.25"),
        deviceObserverUID: newUid("2.25"),
        trackingUID: () => newUid("2.25"),
      },
      series: { number: 43, description: "test measurements" },
      equipment,
      now: new Date(),
    });
    const dir = tempDir("sr-");
    const segFile = path.join(dir, "seg.dcm"),
      srFile = path.join(dir, "sr.dcm");
    writeFileSync(segFile, writePart10(seg.dataset));
    writeFileSync(srFile, writePart10(sr));
    const verdict = await dciodvfy(srFile);
    assert.deepEqual(verdict.errors, [], verdict.errors.join("\n"));
    const pixelmed = await pixelmedSRValidator(srFile);
    assert.deepEqual(pixelmed.errors, [], pixelmed.errors.join("\n"));
    console.log(
      `# SR: dciodvfy warnings ${JSON.stringify(verdict.warnings)}; PixelMed warnings ${JSON.stringify(pixelmed.warnings)}`,
    );

    // pydicom: each group's volume against the SEG's own set voxels × its own voxel size
    const read = await python(
      `
import json, sys, pydicom
seg = pydicom.dcmread(sys.argv[1]); sr = pydicom.dcmread(sys.argv[2])
px = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
m = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
voxel_ml = float(m.PixelSpacing[0]) * float(m.PixelSpacing[1]) * float(m.SpacingBetweenSlices) / 1000
count = {}
for f, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
    n = int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
    count[n] = count.get(n, 0) + int(px[f].sum())
groups = sr.ContentSequence[-1].ContentSequence
out = []
for g in groups:
    items = {i.ConceptNameCodeSequence[0].CodeValue: i for i in g.ContentSequence}
    ref = items["121191"].ReferencedSOPSequence[0]
    num = items["118565006"].MeasuredValueSequence[0]
    out.append({"segment": int(ref.ReferencedSegmentNumber), "segSop": ref.ReferencedSOPInstanceUID == seg.SOPInstanceUID,
                "ml": float(num.NumericValue), "unit": num.MeasurementUnitsCodeSequence[0].CodeValue,
                "expected": count[int(ref.ReferencedSegmentNumber)] * voxel_ml, "source": items["121232"].UID})
print(json.dumps(out))`,
      [segFile, srFile],
    );
    assert.deepEqual(
      read.map((g: { segment: number }) => g.segment),
      [1, 2],
      "one group per written segment, label 2 being absent",
    );
    for (const g of read) {
      assert.ok(g.segSop && g.unit === "mL" && g.source === volume.seriesInstanceUID, JSON.stringify(g));
      assert.ok(
        Math.abs(g.ml - g.expected) <= 1e-9 * Math.max(1, g.expected),
        `segment ${g.segment}: ${g.ml} mL written, ${g.expected} mL from the SEG`,
      );
    }
  });
});

describe("RTSTRUCT read back by independent tools", () => {
  it("plastimatch rasterises each ROI (islands and a hole) back to our label map; dciodvfy passes it", async () => {
    const dir = tempDir("rtstruct-");
    const ct = writePhantomSeries(path.join(dir, "ct"), {
      size: 48,
      slices: 6,
      pixelSpacing: 2,
      sliceSpacing: 3,
      patientName: "Rt^Rita",
      patientID: "RT-1",
    });
    const series = ct.files.map((f) => parsePart10(new Uint8Array(readFileSync(f))));
    const volume = seriesToVolume(series);
    const [nx, ny, nz] = volume.dims;
    const labels = new Uint8Array(nx * ny * nz);
    for (let k = 1; k < nz - 1; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const r = Math.hypot(i - 20, j - 22);
          const at = k * nx * ny + j * nx + i;
          if (r <= 12 && r > 5) labels[at] = 1; // a ring: one ROI with a hole
          if (i >= 40 && i <= 43 && j >= 5 && j <= 8) labels[at] = 1; // and a separate island of it
          if (k >= 2 && k <= 3 && ((i - 8) ** 2 + (j - 40) ** 2 <= 9 || (i >= 36 && i <= 44 && j >= 38 && j <= 40)))
            labels[at] = 3; // two islands
          if (k === 3 && i === 30 && j === 30) labels[at] = 3; // a single voxel
        }
      }
    }
    const rt = buildStructureSet({
      volume,
      source: series[0]!.dataset,
      labels: { dims: volume.dims, data: labels },
      segmentLabels: [label(1, "Liver"), label(2, "Lung"), label(3, "Kidney")],
      algorithm: { name: "test-model", version: "1.2.3" },
      uids: { seriesInstanceUID: newUid("2.25"), sopInstanceUID: newUid("2.25") },
      series: { number: 44, description: "test contours" },
      disclaimer: "NOT FOR CLINICAL USE",
      equipment: { manufacturer: "Delineate", modelName: "Delineate", deviceSerialNumber: "t", softwareVersion: "0" },
      now: new Date(),
    });
    const rtFile = path.join(dir, "rtstruct.dcm");
    writeFileSync(rtFile, writePart10(rt));
    const verdict = await dciodvfy(rtFile);
    assert.deepEqual(verdict.errors, [], verdict.errors.join("\n"));
    console.log(`# RTSTRUCT: dciodvfy warnings ${JSON.stringify(verdict.warnings)}`);
    writeFileSync(path.join(dir, "labels.raw"), labels);
    const dice = await rasteriseAndCompare(
      rtFile,
      path.join(dir, "ct"),
      path.join(dir, "labels.raw"),
      volume.dims,
      { Liver: 1, Kidney: 3 },
      path.join(dir, "masks"),
    );
    assert.deepEqual(Object.keys(dice).sort(), ["Kidney", "Liver"], "absent labels get no ROI");
    for (const [roi, d] of Object.entries(dice)) assert.ok(d >= 0.97, `${roi}: Dice ${d}`);
    console.log(`# RTSTRUCT vs label map through plastimatch: ${JSON.stringify(dice)}`);
  });
});

describe("Secondary Capture overlay read back by independent tools", () => {
  it("shows key slices in grey with each label outlined in its colour and a legend; dciodvfy passes it", async () => {
    const dir = tempDir("overlay-");
    const ct = writePhantomSeries(path.join(dir, "ct"), {
      size: 96,
      slices: 10,
      pixelSpacing: 4,
      sliceSpacing: 3,
      patientName: "Sc^Sam",
      patientID: "SC-1",
    });
    const series = ct.files.map((f) => parsePart10(new Uint8Array(readFileSync(f))));
    const volume = seriesToVolume(series);
    const [nx, ny, nz] = volume.dims;
    const labels = new Uint8Array(nx * ny * nz);
    // label 1: a box on slices 2-7; label 3: a smaller box on slices 4-5
    for (let k = 2; k <= 7; k++)
      for (let j = 40; j < 70; j++) for (let i = 20; i < 60; i++) labels[k * nx * ny + j * nx + i] = 1;
    for (let k = 4; k <= 5; k++)
      for (let j = 45; j < 55; j++) for (let i = 65; i < 80; i++) labels[k * nx * ny + j * nx + i] = 3;
    const segmentLabels = [label(1, "Liver"), label(2, "Lung"), label(3, "Kidney")];
    const sc = buildOverlay({
      volume,
      source: series[0]!.dataset,
      labels: { dims: volume.dims, data: labels },
      segmentLabels,
      uids: { seriesInstanceUID: newUid("2.25"), sopInstanceUID: newUid("2.25") },
      series: { number: 45, description: "overlay" },
      equipment: { manufacturer: "Delineate", modelName: "Delineate", deviceSerialNumber: "t", softwareVersion: "0" },
      disclaimer: "NOT FOR CLINICAL USE",
      keySlices: 3,
      now: new Date(),
    });
    const file = path.join(dir, "sc.dcm");
    writeFileSync(file, writePart10(sc));
    const verdict = await dciodvfy(file);
    assert.deepEqual(verdict.errors, [], verdict.errors.join("\n"));
    console.log(`# overlay: dciodvfy warnings ${JSON.stringify(verdict.warnings)}`);
    const read = await python(
      `
import json, sys, pydicom
d = pydicom.dcmread(sys.argv[1])
px = d.pixel_array
f = lambda n, x, y: [int(v) for v in px[n, y, x]]
print(json.dumps({"shape": list(px.shape), "refs": [r.ReferencedSOPInstanceUID for r in d.ReferencedImageSequence],
  "outline": f(1, 20, 50), "inside": f(1, 40, 55), "kidneyOutline": f(1, 65, 50), "swatch1": f(1, 4, 4), "swatch2": f(1, 4, 14),
  "photometric": d.PhotometricInterpretation}))`,
      [file],
    );
    const sliceUid = (k: number) => volume.slices[k]!.sopInstanceUID;
    // labelled slices 2..7: the middle of each third of them
    assert.deepEqual(read.refs, [sliceUid(3), sliceUid(5), sliceUid(7)]);
    assert.deepEqual(read.shape, [3, ny, nx, 3]);
    assert.equal(read.photometric, "RGB");
    assert.deepEqual(read.outline, [60, 100, 200], "the box's left edge in label 1's colour");
    assert.ok(
      read.inside[0] === read.inside[1] && read.inside[1] === read.inside[2],
      `inside the box is grey: ${read.inside}`,
    );
    assert.deepEqual(read.kidneyOutline, [180, 100, 200], "label 3's outline on the frame of slice 5");
    assert.deepEqual(
      [read.swatch1, read.swatch2],
      [
        [60, 100, 200],
        [180, 100, 200],
      ],
      "the legend's swatches, one per label present",
    );
  });
});

const abdomenData = sharedData("totalseg-ct-abdomen-j2k/dicom");

describe("SEG on real CT read back by pydicom", { skip: abdomenData.skip }, () => {
  it("reproduces the model's label map on the real abdomen exactly, on the source grid", {
    timeout: 180_000,
  }, async () => {
    const dir = tempDir("realseg-");
    const study = await prepareAbdomenStudy(abdomenData.path, path.join(dir, "ct"));
    const series = readdirSync(study.dir)
      .filter((f) => !f.startsWith("DIRFILE"))
      .map((f) => parsePart10(new Uint8Array(readFileSync(path.join(study.dir, f)))));
    const volume = seriesToVolume(series);
    const model = loadModelPackage(path.join(ROOT, "models"), "ct-body");
    const inference = await InferenceWorker.start(
      model,
      { executionProviders: ["cpu"], intraOpThreads: 0 },
      createLogger({ level: "error", silent: true }),
    );
    const labels = await inference.segment(volume).finally(() => inference.close());
    const seg = testSegmentation({
      volume,
      source: series[0]!.dataset,
      labels,
      segmentLabels: model.manifest.labels,
      algorithm: { name: "ct-body", version: model.manifest.version },
      series: { number: 9001, description: "real" },
    });
    const file = path.join(dir, "seg.dcm");
    writeFileSync(file, writePart10(seg.dataset));
    assert.deepEqual((await dciodvfy(file)).errors, []);
    // pydicom puts each frame back on the slice its source image reference names; the rest of the grid stays 0
    const sopOrder = path.join(dir, "sops.json");
    writeFileSync(sopOrder, JSON.stringify(volume.slices.map((s) => s.sopInstanceUID)));
    await python(
      `
import json, sys, numpy as np, pydicom
d = pydicom.dcmread(sys.argv[1]); sops = json.load(open(sys.argv[2]))
px = d.pixel_array.reshape(int(d.NumberOfFrames), d.Rows, d.Columns)
grid = np.zeros((len(sops), d.Rows, d.Columns), dtype=np.uint8)
for f, fg in enumerate(d.PerFrameFunctionalGroupsSequence):
    k = sops.index(fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
    n = int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
    grid[k][px[f] == 1] = n
grid.tofile(sys.argv[3])
print("null")`,
      [file, sopOrder, path.join(dir, "grid.raw")],
    );
    const grid = new Uint8Array(readFileSync(path.join(dir, "grid.raw")));
    const numberOf = seg.segmentNumbers;
    const expected = labels.data.map((v) => numberOf.get(v) ?? 0);
    let differ = 0;
    for (let i = 0; i < expected.length; i++) if (grid[i] !== expected[i]) differ++;
    assert.equal(differ, 0, `${differ} of ${expected.length} voxels differ`);
    assert.ok(
      expected.some((v) => v !== 0),
      "the model found something to segment",
    );
  });
});

describe("character sets", () => {
  it("writes a Latin-1 source's accented patient name so that pydicom reads it back unchanged in every output", {
    timeout: 120_000,
  }, async () => {
    const dir = tempDir("charset-");
    const ct = writePhantomSeries(path.join(dir, "utf8"), {
      size: 48,
      slices: 6,
      pixelSpacing: 6,
      sliceSpacing: 4,
      patientName: "Müller^Jürgen",
      patientID: "UML-1",
    });
    // the source as many scanners write it: ISO_IR 100 (Latin-1), converted by dcmtk
    const latin1 = path.join(dir, "latin1");
    mkdirSync(latin1);
    for (const f of ct.files) await exec("dcmconv", ["+L1", f, path.join(latin1, path.basename(f))]);
    const first = path.join(latin1, readdirSync(latin1)[0]!);
    assert.deepEqual(
      await python(
        `import json, sys, pydicom\nd = pydicom.dcmread(sys.argv[1]); print(json.dumps([d.SpecificCharacterSet, d[0x00100010].value.original_string.hex()]))`,
        [first],
      ),
      ["ISO_IR 100", Buffer.from("Müller^Jürgen", "latin1").toString("hex")],
    );
    // dcmjs decodes the text to Unicode (and then says ISO_IR 192 itself)
    const series = readdirSync(latin1).map((f) => parsePart10(new Uint8Array(readFileSync(path.join(latin1, f)))));
    const volume = seriesToVolume(series);
    const labels = new Uint8Array(volume.data.length);
    for (let i = 0; i < labels.length; i++) if (volume.data[i]! > -500) labels[i] = 1;
    const model = loadModelPackage(path.join(ROOT, "models"), "ct-body");
    const outputs = encodeOutputs({
      volume,
      source: series[0]!.dataset,
      labels: { dims: volume.dims, data: labels },
      manifest: model.manifest,
      kinds: ["seg", "sr", "rtstruct", "sc"],
      uids: {},
      settings: {
        seriesNumber: 1,
        seriesDescription: "seg",
        segType: "BINARY",
        sr: { seriesNumber: 2, seriesDescription: "sr" },
        rtstruct: { seriesNumber: 3, seriesDescription: "rt" },
        sc: { seriesNumber: 4, seriesDescription: "sc", keySlices: 2 },
        disclaimer: "NOT FOR CLINICAL USE",
        deviceSerialNumber: "t",
      },
      softwareVersion: "0",
      deviceObserverUID: newUid("2.25"),
      newUid: () => newUid("2.25"),
      now: new Date(),
    });
    const files = outputs.map((o) => {
      const f = path.join(dir, `${o.kind}.dcm`);
      writeFileSync(f, o.bytes);
      return f;
    });
    const names = await python(
      `import json, sys, pydicom\nprint(json.dumps([[pydicom.dcmread(f).SpecificCharacterSet, str(pydicom.dcmread(f).PatientName)] for f in sys.argv[1:]]))`,
      files,
    );
    assert.deepEqual(
      names,
      files.map(() => ["ISO_IR 192", "Müller^Jürgen"]),
    );
    for (const f of files) assert.deepEqual((await dciodvfy(f)).errors, [], f);
  });
});
