import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { NaturalDataset } from "../../src/dicom/dataset.js";
import { SopClass } from "../../src/dicom/uids.js";
import { resolveRules } from "../../src/route/rules.js";
import { planeOf, type RouteRule, type SeriesCandidate, selectSeries } from "../../src/route/selectSeries.js";

const ct = (n: number, extra: NaturalDataset = {}): NaturalDataset[] =>
  Array.from({ length: n }, () => ({
    SOPClassUID: SopClass.CTImageStorage,
    Rows: 512,
    Columns: 512,
    ImageType: ["ORIGINAL", "PRIMARY", "AXIAL"],
    ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
    BodyPartExamined: "CHEST",
    Manufacturer: "SIEMENS",
    ...extra,
  }));
const series = (uid: string, modality: string, description: string, instances?: NaturalDataset[]): SeriesCandidate => ({
  series: { SeriesInstanceUID: uid, Modality: modality, SeriesDescription: description },
  ...(instances ? { instances } : {}),
});
const base: RouteRule = { modality: "CT", sopClassUIDs: [SopClass.CTImageStorage] };

describe("routing", () => {
  const study = [
    series("1", "CT", "Topogram", ct(1, { ImageType: ["ORIGINAL", "PRIMARY", "LOCALIZER"] })),
    series("2", "CT", "Thorax 1.0 B30f", ct(300)),
    series("3", "CT", "Thorax 5.0 B30f", ct(60)),
    series("4", "CT", "Dose report", ct(1, { SOPClassUID: "1.2.840.10008.5.1.4.1.1.7" })),
    series("5", "SR", "Dose SR"),
    series(
      "6",
      "CT",
      "Sagittal MPR",
      ct(200, { ImageType: ["DERIVED", "SECONDARY", "MPR"], ImageOrientationPatient: [0, 1, 0, 0, 0, -1] }),
    ),
  ];
  it("takes the matching series with the most images and says why each other one was passed over", () => {
    const choice = selectSeries("9", study, base);
    assert.equal(choice.seriesInstanceUID, "2");
    assert.deepEqual(Object.fromEntries(choice.skipped.map((s) => [s.seriesInstanceUID, s.reason])), {
      "1": "1× localizer",
      "3": "fewer images (60) than another matching series",
      "4": "1× SOP class 1.2.840.10008.5.1.4.1.1.7 is not one the model takes",
      "5": "modality SR",
      "6": "200× derived image",
    });
  });
  it("applies series description, body part, manufacturer, orientation and slice-count criteria", () => {
    assert.equal(selectSeries("9", study, { ...base, seriesDescription: { include: "5\\.0" } }).seriesInstanceUID, "3");
    assert.equal(selectSeries("9", study, { ...base, seriesDescription: { exclude: "1\\.0" } }).seriesInstanceUID, "3");
    assert.equal(selectSeries("9", study, { ...base, maxSlices: 100 }).seriesInstanceUID, "3");
    const none = (rule: RouteRule, why: RegExp) => {
      const choice = selectSeries("9", study, rule);
      assert.equal(choice.seriesInstanceUID, null);
      assert.match(choice.reason ?? "", why);
    };
    none({ ...base, bodyPartExamined: ["HEAD"] }, /2: body part CHEST is not one of HEAD/);
    none({ ...base, manufacturer: "^GE" }, /2: manufacturer "SIEMENS" does not match \/\^GE\/i/);
    none({ ...base, orientation: ["coronal"] }, /2: orientation axial is not one of coronal/);
    none({ ...base, minSlices: 400 }, /2: 300 images, fewer than 400/);
    none({ ...base, modality: "MR" }, /no MR image series.*2: modality CT/);
  });
  it("names the plane of an orientation, with 8° of tolerance", () => {
    const tilt = (deg: number) => [1, 0, 0, 0, Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)];
    assert.equal(planeOf(tilt(7)), "axial");
    assert.equal(planeOf(tilt(18.5)), "oblique");
    assert.equal(planeOf([1, 0, 0, 0, 0, -1]), "coronal");
    assert.equal(planeOf([0, 1, 0, 0, 0, -1]), "sagittal");
    assert.equal(planeOf(undefined), undefined);
  });
});

describe("routing rules", () => {
  type Kind = "seg" | "sr" | "rtstruct";
  const models: Record<string, { modality: string; outputs: Kind[] }> = {
    "ct-a": { modality: "CT", outputs: ["seg", "sr", "rtstruct"] },
    "ct-b": { modality: "CT", outputs: ["seg", "rtstruct"] },
    "mr-a": { modality: "MR", outputs: ["seg"] },
    "ct-sr": { modality: "CT", outputs: ["sr", "rtstruct"] },
  };
  const modalityOf = (id: string) => models[id]!;
  it("without configured rules, sends CT image series to the default model, writing what its manifest declares", () => {
    assert.deepEqual(resolveRules(undefined, "ct-a", modalityOf), [
      {
        name: "default",
        match: { modality: "CT", sopClassUIDs: [SopClass.CTImageStorage] },
        models: ["ct-a"],
        outputs: ["seg", "sr", "rtstruct"],
        destination: "pacs",
      },
    ]);
  });
  it("defaults a rule's outputs to those all its models declare, never an SR without its SEG", () => {
    const outputs = (ids: string[]) =>
      resolveRules([{ name: "r", match: {}, models: ids, destination: "pacs" }], "ct-a", modalityOf)[0]!.outputs;
    assert.deepEqual(outputs(["ct-a", "ct-b"]), ["seg", "rtstruct"]);
    assert.deepEqual(outputs(["ct-sr"]), ["rtstruct"]);
    assert.throws(() => outputs(["ct-sr", "mr-a"]), /its models take CT and MR/);
  });
  it("takes a rule's modality and SOP classes from its models unless it names them", () => {
    const [ct, mr] = resolveRules(
      [
        {
          name: "ct",
          match: { orientation: ["axial"] },
          models: ["ct-a", "ct-b"],
          outputs: ["seg"],
          destination: "research",
        },
        {
          name: "mr",
          match: { sopClassUIDs: ["1.2.840.10008.5.1.4.1.1.4.1"] },
          models: ["mr-a"],
          outputs: ["seg"],
          destination: "pacs",
        },
      ],
      "ct-a",
      modalityOf,
    );
    assert.deepEqual(ct?.match, { orientation: ["axial"], modality: "CT", sopClassUIDs: [SopClass.CTImageStorage] });
    assert.deepEqual(mr?.match, { modality: "MR", sopClassUIDs: ["1.2.840.10008.5.1.4.1.1.4.1"] });
  });
  it("refuses a rule whose models take different modalities, or one that matches another modality than its models", () => {
    const rule = (match: { modality?: string }, models: string[]) => [
      { name: "r", match, models, outputs: ["seg" as const], destination: "pacs" },
    ];
    assert.throws(
      () => resolveRules(rule({}, ["ct-a", "mr-a"]), "ct-a", modalityOf),
      /rule "r": its models take CT and MR/,
    );
    assert.throws(
      () => resolveRules(rule({ modality: "MR" }, ["ct-a"]), "ct-a", modalityOf),
      /rule "r": its models take CT, but the rule matches MR/,
    );
  });
});
