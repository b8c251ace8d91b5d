import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import { exec, ROOT, sharedData, tempDir } from "../helpers/tools.js";

interface ClassCheck {
  loss: number;
  lossWithClassLogitsChanged: number;
  maxAbsLogitGrad: number;
  meanLogitGrad: number;
  maxAbsHeadGrad: number;
}
interface Report {
  partialLabels: { unknown: ClassCheck; contoured: ClassCheck };
  partialLabelsOrganWeighted: { unknown: ClassCheck; contoured: ClassCheck };
  suspect: {
    weightPerSlice: number[];
    trustedPerSlice: number[];
    loss: number;
    suspectScrambled: number;
    otherScrambled: number;
    untrustedBgExternalSwapped: number;
    trustedBgExternalSwapped: number;
  };
  mirroring: { right: number; left: number; contouredRight: boolean; contouredLeft: boolean; meanX: number | null }[];
  resume: { steps: number; stoppedAfter: number; losses: number[]; resumedLosses: number[]; sameWeights: boolean };
  sampling: { batches: number; patchesWithMandible: { patient: number; organ: number } };
  priorCorrection: { organWeight: number; maxDiff: number; maxChange: number };
}

it("hn-oar recipe: uncontoured organs get no gradient, suspect slices are out of the loss, mirroring swaps the parotids, a resumed run repeats an uninterrupted one, organ-first sampling favours a rarely contoured organ, the prior correction divides the organs' probabilities by their weight", {
  timeout: 300_000,
}, async () => {
  const out = tempDir("hn-oar-");
  await exec("/usr/bin/python3", [path.join(ROOT, "training", "test_hn_oar.py"), "--out", out], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const r = JSON.parse(readFileSync(path.join(out, "hn-oar-test.json"), "utf8")) as Report;

  // (a) an organ absent from the target and not contoured: nothing pushes it to background; with the plain loss and
  // with organ voxels weighted ×10 in the cross-entropy (--organ-weight)
  for (const [which, { unknown, contoured }] of Object.entries({
    plain: r.partialLabels,
    "organ-weighted": r.partialLabelsOrganWeighted,
  })) {
    assert.equal(unknown.maxAbsLogitGrad, 0, `${which}: the unknown class's logits get no gradient`);
    assert.equal(unknown.maxAbsHeadGrad, 0, `${which}: the unknown class's head weights get no gradient`);
    assert.equal(unknown.lossWithClassLogitsChanged, unknown.loss, `${which}: its logits do not change the loss`);
    // the same organ contoured (and absent) is taught to be absent
    assert.ok(contoured.maxAbsHeadGrad > 1e-4, `${which}: contoured class: head gradient ${contoured.maxAbsHeadGrad}`);
    assert.ok(contoured.meanLogitGrad > 0, `${which}: contoured and absent: gradient descent lowers its logits`);
    assert.ok(
      contoured.lossWithClassLogitsChanged > contoured.loss + 1e-3,
      `${which}: raising its logits raises the loss`,
    );
  }
  assert.notEqual(r.partialLabelsOrganWeighted.contoured.loss, r.partialLabels.contoured.loss, "the weight is applied");
  const { unknown, contoured } = r.partialLabels;

  // (b) suspect slices 2 and 3 carry no weight; slices 12 and 13 have an untrusted body outline
  const s = r.suspect;
  assert.deepEqual(s.weightPerSlice, [1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(s.trustedPerSlice, [1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1]);
  assert.equal(s.suspectScrambled, s.loss, "scrambling the predictions on suspect slices leaves the loss");
  assert.notEqual(s.otherScrambled, s.loss, "scrambling them on another slice changes it");
  assert.ok(
    Math.abs(s.untrustedBgExternalSwapped - s.loss) < 1e-6,
    "background vs External is free where the outline is not trusted",
  );
  assert.notEqual(s.trustedBgExternalSwapped, s.loss, "and not where it is");

  // (c) mirroring: the right parotid (the only one contoured) becomes a left one on the patient's left, flags too
  const flipped = r.mirroring.filter((m) => m.contouredLeft);
  assert.ok(flipped.length > 0 && flipped.length < r.mirroring.length, "some patches mirrored, some not");
  for (const m of r.mirroring) {
    assert.notEqual(m.contouredLeft, m.contouredRight, "exactly one parotid contoured");
    if (m.contouredLeft) assert.ok(m.right === 0 && m.left > 0 && m.meanX! > 12, JSON.stringify(m));
    else assert.ok(m.left === 0 && m.right > 0 && m.meanX! < 12, JSON.stringify(m));
  }

  // (d) resume through training/trainer.py with the recipe's batches and loss
  assert.equal(r.resume.stoppedAfter, 3);
  assert.deepEqual(r.resume.resumedLosses, r.resume.losses, "the resumed run's losses are the uninterrupted run's");
  assert.ok(r.resume.sameWeights, "and so are its weights");
  // (e) one patient of six contoured the mandible: organ-first sampling puts it in a patch about 1 time in 8 (half
  // the patches × one of four organ classes), patient-first about 1 in 48
  const { patient, organ } = r.sampling.patchesWithMandible;
  assert.ok(organ > 2 * patient && organ >= r.sampling.batches / 10, JSON.stringify(r.sampling));
  // (f) prior_correct.py undoes --organ-weight: probabilities ∝ p / w (the expectation computed from the uncorrected
  // network's own output), and it does change them
  assert.ok(r.priorCorrection.maxDiff < 1e-6, JSON.stringify(r.priorCorrection));
  assert.ok(r.priorCorrection.maxChange > 1e-2, JSON.stringify(r.priorCorrection));
  console.log(
    `# unknown class: max |∂L/∂logit| ${unknown.maxAbsLogitGrad}; contoured: ${contoured.maxAbsHeadGrad.toExponential(2)} (head); losses ${r.resume.losses.map((l) => l.toFixed(3)).join(" → ")}`,
  );
});

it("openkbp_to_dicom: an OpenKBP patient as a CT series that dciodvfy passes and dcm2niix reads back to the same grid and voxels", {
  timeout: 300_000,
}, async (t) => {
  const patient = sharedData("openkbp-hn-oar/validation/pt_201");
  if (patient.skip) return t.skip(patient.skip);
  const out = tempDir("openkbp-");
  const { stdout } = await exec(
    "/usr/bin/python3",
    [path.join(ROOT, "training", "openkbp_to_dicom.py"), "--patient", patient.path, "--out", out, "--verify"],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const check = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
    shape: number[];
    dcm2niixShape: number[];
    affineMaxAbsDiffMm: number;
    voxelsEqual: boolean;
  };
  assert.deepEqual(check.dcm2niixShape, [128, 128, 128]);
  assert.ok(check.affineMaxAbsDiffMm < 1e-3, `dcm2niix's affine differs by ${check.affineMaxAbsDiffMm} mm`);
  assert.ok(check.voxelsEqual, "dcm2niix's voxels are the NIfTI's HU");
  const files = readdirSync(out).filter((f) => f.endsWith(".dcm"));
  assert.equal(files.length, 128);
  for (const f of [files[0]!, files[64]!, files[127]!]) {
    const r = await exec("dciodvfy", [path.join(out, f)]).catch((e: { stdout: string; stderr: string }) => e);
    const text = `${r.stdout}${r.stderr}`;
    assert.ok(!/^Error/m.test(text), `dciodvfy ${f}: ${text}`);
    assert.match(text, /CTImage/);
  }
});

it("hn-oar through the DICOM path: delineate segment's SEG of a converted OpenKBP patient equals the Python evaluation's prediction", {
  timeout: 900_000,
}, async (t) => {
  const patient = sharedData("openkbp-hn-oar/validation/pt_235");
  if (patient.skip) return t.skip(patient.skip);
  const checkpoint = path.join(ROOT, "training", "checkpoints", "hn-oar", "last.pt");
  if (!existsSync(checkpoint)) return t.skip(`${checkpoint} is absent`);
  const work = tempDir("hn-oar-dicom-");
  const py = (script: string, args: string[]) =>
    exec("/usr/bin/python3", [path.join(ROOT, "training", script), ...args], { maxBuffer: 64 * 1024 * 1024 });
  // a frozen copy: the run in progress may replace last.pt between the export and the evaluation
  const frozen = path.join(work, "frozen.pt");
  cpSync(checkpoint, frozen);
  // the package as shipped, less its post-processing (the Python side has none)
  const models = path.join(work, "models");
  mkdirSync(path.join(models, "hn-oar"), { recursive: true });
  const manifest = JSON.parse(readFileSync(path.join(ROOT, "models", "hn-oar", "model.json"), "utf8")) as Record<
    string,
    unknown
  >;
  delete manifest.postprocessing;
  writeFileSync(path.join(models, "hn-oar", "model.json"), JSON.stringify(manifest));
  await py("export_hn_oar.py", ["--checkpoint", frozen, "--out", path.join(models, "hn-oar", "model.onnx")]);
  const config = JSON.parse(readFileSync(path.join(ROOT, "config", "default.json"), "utf8")) as Record<string, unknown>;
  config.model = { dir: models, id: "hn-oar" };
  config.dataDir = path.join(work, "var");
  writeFileSync(path.join(work, "config.json"), JSON.stringify(config));
  await py("openkbp_to_dicom.py", ["--patient", patient.path, "--out", path.join(work, "dicom")]);
  await exec(
    process.execPath,
    [
      path.join(ROOT, "dist", "src", "cli", "main.js"),
      "segment",
      path.join(work, "dicom"),
      "--out",
      path.join(work, "out"),
      "--model",
      "hn-oar",
      "--format",
      "seg",
      "--config",
      path.join(work, "config.json"),
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const [study] = readdirSync(path.join(work, "out"));
  const [series] = readdirSync(path.join(work, "out", study!));
  const seg = path.join(work, "out", study!, series!, "seg.dcm");
  const report = path.join(work, "report.json");
  await py("evaluate_hn_oar.py", [
    "--checkpoint",
    frozen,
    "--data",
    path.dirname(path.dirname(patient.path)),
    "--patients",
    "pt_235",
    "--seg",
    seg,
    "--agreement",
    "--out",
    report,
  ]);
  const r = JSON.parse(readFileSync(report, "utf8")) as {
    patients: { agreement: { voxels: number; equal: number; perClassDice: Record<string, number | null> } }[];
  };
  const a = r.patients[0]!.agreement;
  // the same network, grid, orientation (LPI) and tiling: only near-ties of the argmax may differ
  assert.ok(a.equal / a.voxels >= 0.9999, `SEG and Python agree on ${a.equal} of ${a.voxels} voxels`);
  for (const [name, dice] of Object.entries(a.perClassDice))
    assert.ok(dice === null || dice >= 0.99, `${name}: SEG vs Python Dice ${dice}`);
  console.log(`# pt_235: SEG vs Python ${a.equal}/${a.voxels} voxels equal; ${JSON.stringify(a.perClassDice)}`);
});
