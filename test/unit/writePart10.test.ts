import assert from "node:assert/strict";
import { it } from "node:test";
import dcmjs from "dcmjs";
import { IMPLEMENTATION_CLASS_UID, type NaturalDataset, PixelFiller, writePart10 } from "../../src/dicom/dataset.js";
import { TransferSyntax } from "../../src/dicom/uids.js";
import type { ModelLabel } from "../../src/models/manifest.js";
import { buildMeasurementReport } from "../../src/outputs/measurementReport.js";
import { buildSegmentation } from "../../src/outputs/segmentation.js";
import { buildStructureSet } from "../../src/outputs/structureSet.js";
import { newUid } from "../../src/outputs/uid.js";
import { seriesToVolume } from "../../src/volume/seriesToVolume.js";
import { makeSeries } from "../helpers/series.js";

/** The file as dcmjs alone writes it (header and sequences), pixel data appended: what writePart10 wrote before. */
function dcmjsPart10(input: NaturalDataset): Uint8Array {
  const filler = input.PixelData instanceof PixelFiller ? input.PixelData : undefined;
  let dataset = input;
  if (filler) {
    const bytes = new Uint8Array(filler.byteLength);
    filler.fill(bytes);
    dataset = { ...input, PixelData: [bytes.buffer] };
  }
  const meta: NaturalDataset = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
    TransferSyntaxUID: TransferSyntax.ExplicitVRLittleEndian,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: "DELINEATE_0_1",
    _vrMap: { FileMetaInformationVersion: "OB" },
  };
  const { PixelData: pixelData, ...rest } = dataset;
  const pixels = new Uint8Array((pixelData as ArrayBuffer[])[0]!);
  const dict = new dcmjs.data.DicomDict(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(rest);
  const head = new Uint8Array(dict.write());
  const vr = dataset._vrMap?.PixelData as string;
  const padded = pixels.byteLength + (pixels.byteLength % 2);
  const out = new Uint8Array(head.byteLength + 12 + padded);
  out.set(head);
  const view = new DataView(out.buffer, head.byteLength, 12);
  view.setUint16(0, 0x7fe0, true);
  view.setUint16(2, 0x0010, true);
  out[head.byteLength + 4] = vr.charCodeAt(0);
  out[head.byteLength + 5] = vr.charCodeAt(1);
  view.setUint32(8, padded, true);
  out.set(pixels, head.byteLength + 12);
  return out;
}

function dcmjsWithoutPixels(dataset: NaturalDataset): Uint8Array {
  const dict = new dcmjs.data.DicomDict(
    dcmjs.data.DicomMetaDictionary.denaturalizeDataset({
      FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
      MediaStorageSOPClassUID: dataset.SOPClassUID,
      MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
      TransferSyntaxUID: TransferSyntax.ExplicitVRLittleEndian,
      ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
      ImplementationVersionName: "DELINEATE_0_1",
      _vrMap: { FileMetaInformationVersion: "OB" },
    }),
  );
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return new Uint8Array(dict.write());
}

// 13×11: 143 pixels a frame, so frames start mid-byte; 12×16: rows a multiple of 4 (label boxes skip words of background)
for (const [rows, cols, nz] of [
  [13, 11, 7],
  [12, 16, 6],
] as const) {
  it(`writes SEG (BINARY, LABELMAP), RTSTRUCT and SR byte for byte as dcmjs alone writes them (${cols}×${rows})`, () => {
    const series = makeSeries(
      Array.from({ length: nz }, (_, k) => ({
        position: [0, 0, k * 2.5],
        pixels: Array.from({ length: rows * cols }, () => 40),
      })),
      { rows, cols },
    );
    const volume = seriesToVolume(series);
    const labels = new Uint8Array(cols * rows * nz);
    for (let i = 0; i < labels.length; i++) {
      const k = Math.floor(i / (cols * rows));
      const x = i % cols,
        y = Math.floor(i / cols) % rows;
      if (k >= 1 && k <= 4 && x > 2 && x < 8 && y > 2 && y < 9) labels[i] = 1;
      if (k >= 3 && x > 5 && y > 6) labels[i] = 3;
    }
    const label = (value: number, name: string): ModelLabel => ({
      value,
      name,
      color: [200, value * 40, 10],
      category: { code: "123037004", scheme: "SCT", meaning: "Anatomical Structure" },
      type: { code: "10200004", scheme: "SCT", meaning: name },
      rtInterpretedType: "ORGAN",
    });
    const common = {
      volume,
      source: { ...series[0]!.dataset, Modality: "CT" },
      labels: { dims: volume.dims, data: labels },
      segmentLabels: [label(1, "Liver"), label(2, "Lung"), label(3, "Kidney")],
      series: { number: 42, description: "test" },
      equipment: { manufacturer: "Delineate", modelName: "Delineate", deviceSerialNumber: "t", softwareVersion: "0" },
      now: new Date(),
    };
    const algorithm = { name: "test-model", version: "1" };
    for (const type of ["BINARY", "LABELMAP"] as const) {
      const seg = buildSegmentation({
        ...common,
        algorithm,
        uids: {
          seriesInstanceUID: newUid("2.25"),
          sopInstanceUID: newUid("2.25"),
          dimensionOrganizationUID: newUid("2.25"),
        },
        disclaimer: "Not for clinical use",
        type,
      });
      assert.deepEqual(writePart10(seg.dataset), dcmjsPart10(seg.dataset), type);
      if (type === "BINARY") {
        const sr = buildMeasurementReport({
          ...common,
          segmentation: seg,
          uids: {
            seriesInstanceUID: newUid("2.25"),
            sopInstanceUID: newUid("2.25"),
            deviceObserverUID: newUid("2.25"),
            trackingUID: () => newUid("2.25"),
          },
        });
        assert.deepEqual(writePart10(sr), dcmjsWithoutPixels(sr), "SR");
      }
    }
    const rt = buildStructureSet({
      ...common,
      algorithm,
      uids: { seriesInstanceUID: newUid("2.25"), sopInstanceUID: newUid("2.25") },
      disclaimer: "",
    });
    assert.deepEqual(writePart10(rt), dcmjsWithoutPixels(rt), "RTSTRUCT");
  });
}

it("leaves DS values other than ds()'s text to dcmjs, and writes the same bytes as dcmjs for them", () => {
  // each ContourData below is written by dcmjs (a value it pads, trims, truncates or would refuse to read back as ds()
  // text) except the first, written directly; either way the file equals dcmjs's own
  const contour = (data: unknown[]) => ({ ContourGeometricType: "CLOSED_PLANAR", ContourData: data });
  const dataset: NaturalDataset = {
    SpecificCharacterSet: "ISO_IR 192", // for the "µ"
    SOPClassUID: "1.2.840.10008.5.1.4.1.1.481.3",
    SOPInstanceUID: "1.2.3.4",
    ROIContourSequence: [
      {
        ReferencedROINumber: 1,
        ContourSequence: [
          contour(["1.5", "-2", "3e-7", "1234567890.12345"]),
          contour(["1.5", " 2", "3"]),
          contour(["1.5", "12345678901234567", "3"]),
          contour(["1.5", "", "3"]),
          contour(["1.5", "2\\3"]),
          contour([1.5, "2", "3"]),
          contour(["1.5", "2,5", "3"]),
          contour(["1.5", "2", "µ"]),
        ],
      },
    ],
  };
  assert.deepEqual(writePart10(dataset), dcmjsWithoutPixels(dataset));
});

it("declares UTF-8 (ISO_IR 192) when any text, nested in a sequence or not, is not ASCII, and only then", () => {
  // the bytes of the file (dcmjs's reader reports ISO_IR 192 for whatever it decoded)
  const charset = (dataset: NaturalDataset) => {
    const text = Buffer.from(writePart10(dataset)).toString("latin1");
    return ["ISO_IR 100", "ISO_IR 192"].filter((c) => text.includes(c));
  };
  const base: NaturalDataset = {
    SpecificCharacterSet: "ISO_IR 100",
    SOPClassUID: "1.2.840.10008.5.1.4.1.1.481.3",
    SOPInstanceUID: "1.2.3.4",
    PatientName: "Muller^A",
  };
  assert.deepEqual(charset(base), ["ISO_IR 100"]);
  assert.deepEqual(charset({ ...base, PatientName: "Müller^A" }), ["ISO_IR 192"]);
  assert.deepEqual(
    charset({
      ...base,
      StructureSetROISequence: [{ ROINumber: 1, ROIName: "Parotide_gauche", ROIDescription: "lobe é" }],
    }),
    ["ISO_IR 192"],
  );
  assert.deepEqual(charset({ ...base, StructureSetROISequence: [{ ROINumber: 1, ROIName: "Parotid_L" }] }), [
    "ISO_IR 100",
  ]);
});
