import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { writePart10 } from "../../src/dicom/dataset.js";
import { cli } from "../helpers/convert.js";
import { compareNifti, cornerPositions } from "../helpers/nifti.js";
import { makeSeries } from "../helpers/series.js";
import { exec, sharedData, tempDir } from "../helpers/tools.js";

const run = cli;

/** Converts a folder with `delineate convert` and with dcm2niix (run here), and compares the two NIfTI files. */
async function parity(folder: string, work: string) {
  const ours = await run(["convert", folder, "--out", path.join(work, "ours.nii.gz")]);
  assert.equal(ours.code, 0, ours.stderr);
  await exec("dcm2niix", ["-z", "y", "-f", "ref", "-o", work, folder]);
  const ref = readdirSync(work).filter((f) => /^ref.*\.nii\.gz$/.test(f));
  assert.equal(ref.length, 1, `dcm2niix wrote ${ref.join(", ")}`);
  return compareNifti(ours.stdout.trim(), path.join(work, ref[0]!));
}

/** A generated single-frame MR series on disk, in the orientation given, as DICOM files. */
function writeSeries(
  dir: string,
  iop: number[],
  normal: [number, number, number],
  signed: boolean,
  slope?: number,
  intercept?: number,
): string {
  mkdirSync(dir, { recursive: true });
  const [rows, cols, nz] = [12, 10, 7];
  const series = makeSeries(
    Array.from({ length: nz }, (_, k) => ({
      position: [5 + k * 2.5 * normal[0], -8 + k * 2.5 * normal[1], 30 + k * 2.5 * normal[2]] as [
        number,
        number,
        number,
      ],
      iop,
      pixels: Array.from({ length: rows * cols }, (_, i) => (signed ? -500 : 0) + ((i * 37 + k * 101) % 997)),
      extra: { Modality: "MR", SeriesNumber: 3, PatientName: "Convert^Test", PatientID: "CONV-1", SliceThickness: 2.5 },
    })),
    {
      rows,
      cols,
      signed,
      ...(slope !== undefined ? { slope } : {}),
      ...(intercept !== undefined ? { intercept } : {}),
    },
  );
  series.forEach((s, k) => writeFileSync(path.join(dir, `${k}.dcm`), writePart10(s.dataset)));
  return dir;
}

describe("delineate convert: series → NIfTI, voxel for voxel with dcm2niix", () => {
  const cases: [string, number[], [number, number, number], boolean, number?, number?][] = [
    ["axial, unsigned", [1, 0, 0, 0, 1, 0], [0, 0, 1], false],
    ["coronal, signed", [1, 0, 0, 0, 0, -1], [0, 1, 0], true],
    ["sagittal, rescaled", [0, 1, 0, 0, 0, -1], [-1, 0, 0], false, 1, -1024],
    [
      "oblique (20° about x)",
      [1, 0, 0, 0, Math.cos(0.349), Math.sin(0.349)],
      [0, -Math.sin(0.349), Math.cos(0.349)],
      true,
    ],
  ];
  for (const [name, iop, normal, signed, slope, intercept] of cases) {
    it(`generated ${name}: identical voxels, affine within 1e-3 mm`, { timeout: 60_000 }, async () => {
      const work = tempDir("convert-");
      const c = await parity(writeSeries(path.join(work, "dicom"), iop, normal, signed, slope, intercept), work);
      assert.deepEqual(c.shapes[0], c.shapes[1]);
      assert.equal(c.differing, 0);
      assert.ok(c.maxAffineDifferenceMm < 1e-3, `affine differs by ${c.maxAffineDifferenceMm} mm`);
    });
  }

  it("generated 256-slice sagittal series, positions written to 4 decimals: the far slice on the last image", {
    timeout: 120_000,
  }, async () => {
    // a 1.0000149 mm step written to 4 decimals: steps of 1.0000 or 1.0001 mm, whose median (1.0000) put the far
    // slice 255 × 1.49e-5 mm = 3.8 µm short of the last image before the spacing came from the stack's extent
    const work = tempDir("convert-");
    const dir = path.join(work, "dicom");
    mkdirSync(dir);
    const [rows, cols, nz, step] = [6, 5, 256, 1.0000149];
    const x = (k: number) => Number((40.1234 - k * step).toFixed(4));
    const series = makeSeries(
      Array.from({ length: nz }, (_, k) => ({
        position: [x(k), -20.5, 35.25] as [number, number, number],
        iop: [0, 1, 0, 0, 0, -1],
        pixels: Array.from({ length: rows * cols }, (_, i) => (i * 37 + k * 101) % 997),
        extra: { Modality: "MR", SeriesNumber: 4, PatientName: "Convert^Test", PatientID: "CONV-2" },
      })),
      { rows, cols },
    );
    series.forEach((s, k) => writeFileSync(path.join(dir, `${k}.dcm`), writePart10(s.dataset)));
    const ours = await run(["convert", dir, "--out", path.join(work, "ours.nii.gz")]);
    assert.equal(ours.code, 0, ours.stderr);
    await exec("dcm2niix", ["-z", "y", "-f", "ref", "-o", work, dir]);
    const ref = path.join(work, "ref.nii.gz");
    const c = await compareNifti(ours.stdout.trim(), ref);
    assert.deepEqual(c.shapes[0], c.shapes[1]);
    assert.equal(c.differing, 0);

    // the corner pixels' centres of the first and last images, from their ImagePositionPatient (LPS → RAS); row
    // direction +y, column direction −z, PixelSpacing 0.5 (rows) \ 0.75 (columns)
    const imageCorners = (k: number) =>
      [0, cols - 1].flatMap((i) => [0, rows - 1].map((j) => [-x(k), -(-20.5 + 0.75 * i), 35.25 - 0.5 * j]));
    const within = async (file: string, k: number) => {
      const corners = await cornerPositions(file);
      return Math.max(
        ...imageCorners(k).map((t) => Math.min(...corners.map((p) => Math.hypot(...p.map((v, a) => v - t[a]!))))),
      );
    };
    const [oursFirst, oursLast] = [await within(ours.stdout.trim(), 0), await within(ours.stdout.trim(), nz - 1)];
    const [refFirst, refLast] = [await within(ref, 0), await within(ref, nz - 1)];
    const um = (mm: number) => `${(mm * 1000).toFixed(4)} µm`;
    console.log(
      `# 256-slice sagittal, 4-decimal positions: first image's corners within ${um(oursFirst)}, last image's within ${um(oursLast)} (dcm2niix: ${um(refFirst)}, ${um(refLast)})`,
    );
    assert.ok(oursFirst < 1e-4, `the first slice lies ${um(oursFirst)} from the first image`);
    // float32 sform entries round a 215 mm position to 0.015 µm: 0.1 µm is a hundredth of what the median step gave
    assert.ok(oursLast < 1e-4, `the far slice lies ${um(oursLast)} from the last image`);
    assert.ok(refFirst < 1e-4, `dcm2niix's first slice lies ${um(refFirst)} from the first image`);
  });

  const decubitus = sharedData("dcmqa-decubitus-mr/dicom");
  for (const series of ["HFS_3_t1_fl2d_sag", "HFDR_2_t1_fl2d_sag"]) {
    it(`real sagittal MR, patient position ${series.split("_")[0]} (../shared/data item 16)`, {
      skip: decubitus.skip,
      timeout: 120_000,
    }, async () => {
      const work = tempDir("convert-");
      const c = await parity(path.join(decubitus.path, series), work);
      assert.deepEqual(c.shapes, [
        [35, 256, 256],
        [35, 256, 256],
      ]);
      assert.equal(c.differing, 0);
      assert.ok(c.maxAffineDifferenceMm < 1e-3, `affine differs by ${c.maxAffineDifferenceMm} mm`);
      console.log(`# ${series}: 0 voxels differ, affine within ${c.maxAffineDifferenceMm.toExponential(2)} mm`);
    });
  }

  const sag = sharedData("dcmqa-sag-mr");
  for (const [series, ref] of [
    ["XA30_classic_5001_Product_EPI_Sag_Ascending", "Product_EPI_Sag_Ascending_5001"],
    ["XA30_enhanced_5_Product_EPI_Sag_Ascending", "Product_EPI_Sag_Ascending_5"],
  ] as const) {
    it(`real sagittal EPI, ${series.includes("enhanced") ? "Enhanced MR (one file, 63 frames, per-frame functional groups)" : "classic (63 files)"} (item 15) against the reference NIfTI there`, {
      skip: sag.skip,
      timeout: 120_000,
    }, async () => {
      const work = tempDir("convert-");
      const ours = await run([
        "convert",
        path.join(sag.path, "dicom", series),
        "--out",
        path.join(work, "ours.nii.gz"),
      ]);
      assert.equal(ours.code, 0, ours.stderr);
      const c = await compareNifti(ours.stdout.trim(), path.join(sag.path, "ref-dcm2niix-local", `${ref}.nii.gz`));
      assert.deepEqual(c.shapes, [
        [63, 86, 86],
        [63, 86, 86],
      ]);
      assert.equal(c.differing, 0);
      assert.ok(c.maxAffineDifferenceMm < 1e-3, `affine differs by ${c.maxAffineDifferenceMm} mm`);
      console.log(`# ${series}: 0 voxels differ, affine within ${c.maxAffineDifferenceMm.toExponential(2)} mm`);
    });
  }

  const philips = sharedData("dcmqa-ct-philips-tilt/dicom/S21610");
  it("converts a gantry-tilted CT folder (item 1): the tilted series corrected with a warning, the localizer, exam summary and DIRFILEs named as skipped", {
    skip: philips.skip,
    timeout: 120_000,
  }, async () => {
    const work = tempDir("convert-");
    const p = await run(["convert", philips.path, "--out", path.join(work, "philips.nii.gz")]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(
      p.stdout.trim(),
      path.join(work, "philips_Tilt.nii.gz"),
      "one volume, named as dcm2niix names a tilt-corrected one",
    );
    assert.match(
      p.stderr,
      /warning: series [0-9.]+: gantry tilt of -18\.50° corrected: resampled onto a rectilinear grid of 512×600×54, planes 2\.371 mm apart/,
    );
    assert.match(p.stderr, /has no image to convert: localizer/, "the localizer series");
    assert.match(p.stderr, /has no image to convert: derived image/, "the exam-summary series");
    assert.match(
      p.stderr,
      /series no-series-uid:[^ ]* has no image to convert: not an image/,
      "the Philips DIRFILEs, which have no SeriesInstanceUID",
    );
  });

  it("names a non-DICOM file and a truncated one, and still converts the good series", {
    timeout: 60_000,
  }, async () => {
    const work = tempDir("convert-");
    const dir = writeSeries(path.join(work, "dicom"), [1, 0, 0, 0, 1, 0], [0, 0, 1], false);
    writeFileSync(path.join(dir, "README.txt"), "not DICOM");
    writeFileSync(path.join(dir, "cut.dcm"), new Uint8Array(200));
    const r = await run(["convert", dir, "--out", path.join(work, "out.nii.gz")]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /skipped .*README\.txt/);
    assert.match(r.stderr, /skipped .*cut\.dcm/);
    assert.equal(r.stdout.trim(), path.join(work, "out.nii.gz"));
  });
});
