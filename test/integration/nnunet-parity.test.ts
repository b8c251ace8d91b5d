/**
 * Parity with nnU-Net v2.8.1's own predictor on ../shared/data/nnunet-parity: every case's model folder imported
 * with `delineate import nnunet`, its NIfTI input run through `delineate segment`, labels and probabilities compared
 * with what nnUNetPredictor wrote. The thresholds are the (≥ 99.9 % identical labels, every difference a
 * near-tie in nnU-Net's probabilities) and the fixtures' README's (nnU-Net against itself on another torch moves
 * probabilities by up to ~5e-4); the figures measured are in docs/nnunet.md.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { nnunetAgreement } from "../../harness/nnunetParity.js";
import { readNifti } from "../../src/volume/niftiRead.js";
import { parseNpy, readNpz } from "../helpers/npz.js";
import { ROOT, sharedData, tempDir } from "../helpers/tools.js";

const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [path.join(ROOT, "dist/src/cli/main.js"), ...args], { maxBuffer: 1 << 24 });

const fixtures = sharedData("nnunet-parity");
const CASES: { name: string; configuration: string; folds: string; probabilities: string }[] = [
  { name: "ct-plain-3d", configuration: "3d_fullres", folds: "0", probabilities: "ct-plain-3d" },
  { name: "ct-resenc-2folds", configuration: "3d_fullres", folds: "0,1", probabilities: "ct-resenc-2folds" },
  { name: "ct-anisotropic", configuration: "3d_fullres", folds: "0", probabilities: "ct-anisotropic" },
  { name: "mr-2d", configuration: "2d", folds: "0", probabilities: "mr-2d" },
  // its probabilities are bit-identical to ct-plain-3d's (the fixtures' README)
  { name: "numpy2-checkpoint", configuration: "3d_fullres", folds: "0", probabilities: "ct-plain-3d" },
];

describe("nnU-Net parity (import + segment against nnUNetPredictor's output)", { skip: fixtures.skip }, () => {
  const work = tempDir("nnunet-");
  const config = path.join(work, "config.json");
  const base = JSON.parse(readFileSync(path.join(ROOT, "config", "default.json"), "utf8"));
  writeFileSync(
    config,
    JSON.stringify({
      ...base,
      model: { dir: path.join(work, "models"), id: "ct-plain-3d" },
      inference: { executionProviders: ["cpu"], intraOpThreads: 1 },
    }),
  );
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const c of CASES) {
    it(`${c.name}: labels and probabilities as nnU-Net's`, async (t) => {
      const dir = path.join(fixtures.path, c.name);
      const imported = await run([
        "import",
        "nnunet",
        path.join(dir, "model"),
        "--id",
        c.name,
        "--configuration",
        c.configuration,
        "--folds",
        c.folds,
        "--out",
        path.join(work, "models"),
      ]);
      assert.match(imported.stderr, /placeholder codes/);
      const out = path.join(work, "out", c.name);
      const started = Date.now();
      const seg = await run([
        "segment",
        path.join(dir, "input", `${c.name}_0000.nii.gz`),
        "--out",
        out,
        "--model",
        c.name,
        "--probabilities",
        "--config",
        config,
      ]);
      const seconds = (Date.now() - started) / 1000;
      assert.equal(seg.stdout.trim(), path.join(out, `${c.name}.nii.gz`));

      const got = readNifti(path.join(out, `${c.name}.nii.gz`));
      const expected = readNifti(path.join(dir, "expected", `${c.name}.nii.gz`));
      assert.deepEqual(got.dims, expected.dims);
      // the same geometry as nnU-Net's output (which keeps the input's affine): srow_x/y/z
      for (let o = 280; o < 328; o += 4) assert.equal(got.header.readFloatLE(o), expected.header.readFloatLE(o));
      const probs = parseNpy(readFileSync(path.join(out, `${c.name}_probabilities.npy`)));
      const ref = readNpz(path.join(fixtures.path, c.probabilities, "expected", `${c.probabilities}.npz`)).get(
        "probabilities",
      );
      assert.ok(ref);
      assert.deepEqual(probs.shape, ref.shape);
      const {
        voxels: n,
        differing,
        identical,
        worstMargin,
        maxProbabilityDifference: maxDiff,
        meanProbabilityDifference: meanDiff,
      } = nnunetAgreement(got.data, probs.data, expected.data, ref);
      t.diagnostic(
        `${c.name}: ${n} voxels, ${differing} differ (${(identical * 100).toFixed(4)} % identical), worst nnU-Net top-2 margin there ${worstMargin}, max |p - p_nnU-Net| ${maxDiff.toExponential(2)}, mean ${meanDiff.toExponential(2)}, segment ${seconds.toFixed(1)} s`,
      );
      assert.ok(identical >= 0.999, `${(identical * 100).toFixed(4)} % identical`);
      assert.ok(worstMargin <= 0.01, `a differing voxel where nnU-Net's top-2 margin is ${worstMargin}`);
      assert.ok(meanDiff <= 1e-5, `mean probability difference ${meanDiff}`);
      assert.ok(maxDiff <= 0.05, `max probability difference ${maxDiff}`);
    });
  }

  it("the pre-2.3 plans layout (UNet_class_name, pool_op_kernel_sizes, ...) imports to the same network", async () => {
    // ct-plain-3d's plans rewritten as nnU-Net <= 2.2 wrote them (plans_handler.py:36-97 converts them back)
    const src = path.join(fixtures.path, "ct-plain-3d", "model");
    const folder = path.join(work, "old-plans");
    const plans = JSON.parse(readFileSync(path.join(src, "plans.json"), "utf8"));
    for (const conf of Object.values(plans.configurations) as Record<string, unknown>[]) {
      const arch = conf.architecture as
        | { network_class_name: string; arch_kwargs: Record<string, unknown> }
        | undefined;
      if (!arch) continue;
      const k = arch.arch_kwargs as {
        features_per_stage: number[];
        strides: number[][];
        kernel_sizes: number[][];
        n_conv_per_stage: number[];
        n_conv_per_stage_decoder: number[];
      };
      delete conf.architecture;
      Object.assign(conf, {
        UNet_class_name: "PlainConvUNet",
        UNet_base_num_features: k.features_per_stage[0],
        n_conv_per_stage_encoder: k.n_conv_per_stage,
        n_conv_per_stage_decoder: k.n_conv_per_stage_decoder,
        num_pool_per_axis: k.strides[0]!.map((_, a) => k.strides.filter((s) => s[a]! > 1).length),
        pool_op_kernel_sizes: k.strides,
        conv_kernel_sizes: k.kernel_sizes,
        unet_max_num_features: Math.max(...k.features_per_stage),
      });
    }
    mkdirSync(path.join(folder, "fold_0"), { recursive: true });
    writeFileSync(path.join(folder, "plans.json"), JSON.stringify(plans, null, 2));
    for (const f of ["dataset.json", "dataset_fingerprint.json", "fold_0/checkpoint_final.pth"])
      copyFileSync(path.join(src, f), path.join(folder, f));
    await run(["import", "nnunet", folder, "--id", "old-plans", "--out", path.join(work, "models")]);
    const onnx = (id: string) => readFileSync(path.join(work, "models", id, "fold_0.onnx"));
    assert.ok(onnx("old-plans").equals(onnx("ct-plain-3d")), "the same ONNX graph and weights");
    const a = JSON.parse(readFileSync(path.join(work, "models", "old-plans", "model.json"), "utf8"));
    const b = JSON.parse(readFileSync(path.join(work, "models", "ct-plain-3d", "model.json"), "utf8"));
    assert.deepEqual(a.nnunet, b.nnunet);
  });

  it("delineate models lists imported packages and says their labels still need SNOMED CT codes", async () => {
    const r = await run(["models", "--config", config]).catch((e: { stdout: string }) => e);
    assert.match(r.stdout, /ct-plain-3d\t1\.0\.0\tok\t.*label\(s\) without SNOMED CT codes/);
  });
});
