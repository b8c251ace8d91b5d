import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import { type CodedConcept, CodingScheme, codeItem, DCM, LOINC, RFC5646, SCT, UCUM } from "../../src/dicom/codes.js";
import { ROOT } from "../helpers/tools.js";

const all: [string, CodedConcept][] = Object.entries({ DCM, SCT, UCUM, LOINC, RFC5646 }).flatMap(([scheme, codes]) =>
  Object.entries(codes).map(([name, c]): [string, CodedConcept] => [`${scheme}.${name}`, c]),
);

it("codeItem writes the Basic Code Sequence Macro's three attributes, a new object each time", () => {
  const item = codeItem(DCM.MeasurementGroup);
  assert.deepEqual(item, { CodeValue: "125007", CodingSchemeDesignator: "DCM", CodeMeaning: "Measurement Group" });
  assert.deepEqual(Object.keys(item), ["CodeValue", "CodingSchemeDesignator", "CodeMeaning"]);
  assert.notEqual(codeItem(DCM.MeasurementGroup), item);
  assert.deepEqual(codeItem({ code: "7771000", scheme: "SCT", meaning: "Left" }), {
    CodeValue: "7771000",
    CodingSchemeDesignator: "SCT",
    CodeMeaning: "Left",
  });
});

it("every named concept fits its VRs (CodeValue SH ≤ 16, CodeMeaning LO ≤ 64), names a known scheme, and is frozen", () => {
  const schemes = new Set<string>(Object.values(CodingScheme));
  for (const [name, c] of all) {
    assert.ok(c.code.length > 0 && c.code.length <= 16, name);
    assert.ok(c.meaning.length > 0 && c.meaning.length <= 64, name);
    assert.ok(schemes.has(c.scheme), `${name}: ${c.scheme}`);
    assert.ok(Object.isFrozen(c), name);
  }
  for (const [group, scheme] of [
    [DCM, "DCM"],
    [SCT, "SCT"],
    [UCUM, "UCUM"],
    [LOINC, "LN"],
    [RFC5646, "RFC5646"],
  ] as const)
    for (const c of Object.values(group)) assert.equal(c.scheme, scheme, c.meaning);
  const keys = all.map(([, c]) => `${c.scheme}:${c.code}`);
  assert.equal(new Set(keys).size, keys.length, "no concept named twice");
});

it("src builds code sequence items only through codeItem: no CodeValue or CodingSchemeDesignator outside src/dicom/codes.ts", () => {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      // the data dictionary (generated) names those attributes; it builds no items
      else if (file.endsWith(".ts") && !/dicom[/\\](codes|standardDictionary)\.ts$/.test(file))
        for (const [n, line] of readFileSync(file, "utf8").split("\n").entries())
          if (/CodeValue|CodingSchemeDesignator|CodeMeaning/.test(line))
            found.push(`${path.relative(ROOT, file)}:${n + 1}`);
    }
  };
  walk(path.join(ROOT, "src"));
  assert.deepEqual(found, []);
});
