/**
 * The nnU-Net runtime against nnU-Net's own predictor on the parity fixtures: seconds per case (read, preprocess,
 * sliding window, way back; onnxruntime on one thread, as nnU-Net's recorded run used one torch thread on the same
 * machine class), voxels per second and the ratio to nnU-Net's predict_from_files_sequential time from each case.json;
 * and the agreement with nnU-Net in both accumulation modes (float16 as nnU-Net, float32).
 *
 *     npm run build && node dist/bench/nnunet.js
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";
import { nnunetAgreement } from "../harness/nnunetParity.js";
import { readNpz } from "../harness/npz.js";
import { tempDir } from "../harness/tempDir.js";
import { ROOT, SHARED_DATA } from "../harness/tools.js";
import { importNnunet } from "../src/cli/importNnunet.js";
import { onnxTileNetwork, predictNnunet } from "../src/inference/nnunet/predict.js";
import { loadModelPackage } from "../src/models/loadModel.js";
import { readNifti } from "../src/volume/niftiRead.js";
import { installedVersion, machineFacts, mergeResults, runBench } from "./record.js";

const CASES = [
  { name: "ct-plain-3d", configuration: "3d_fullres", folds: ["0"] },
  { name: "ct-resenc-2folds", configuration: "3d_fullres", folds: ["0", "1"] },
  { name: "ct-anisotropic", configuration: "3d_fullres", folds: ["0"] },
  { name: "mr-2d", configuration: "2d", folds: ["0"] },
];

runBench(async () => {
  const fixtures = path.join(SHARED_DATA, "nnunet-parity");
  const work = tempDir("bench-nnunet-");
  const rows: Record<string, unknown>[] = [];
  try {
    for (const c of CASES) {
      const dir = path.join(fixtures, c.name);
      const caseJson = JSON.parse(readFileSync(path.join(dir, "case.json"), "utf8"));
      await importNnunet({
        folder: path.join(dir, "model"),
        id: c.name,
        outDir: work,
        configuration: c.configuration,
        folds: c.folds,
        root: ROOT,
      });
      const pkg = loadModelPackage(work, c.name);
      const sessions = await Promise.all(
        pkg.onnxPaths.map((p) => ort.InferenceSession.create(p, { intraOpNumThreads: 1 })),
      );
      const is2d = c.configuration === "2d";
      const nets = sessions.map((s) => onnxTileNetwork(s, is2d));
      const expected = readNifti(path.join(dir, "expected", `${c.name}.nii.gz`));
      const ref = readNpz(path.join(dir, "expected", `${c.name}.npz`)).get("probabilities")!;
      for (const accumulate of ["float16", "float32"] as const) {
        const started = process.hrtime.bigint();
        const cpuStarted = process.cpuUsage();
        const img = readNifti(path.join(dir, "input", `${c.name}_0000.nii.gz`));
        const [ni, nj, nk] = img.dims;
        const [si, sj, sk] = img.spacing;
        const r = await predictNnunet(
          img.data,
          [nk, nj, ni],
          [sk, sj, si],
          { ...pkg.manifest.nnunet!, accumulate },
          nets,
          true,
        );
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const cpu = process.cpuUsage(cpuStarted);
        const cpuSeconds = (cpu.user + cpu.system) / 1e6;
        const agreement = nnunetAgreement(r.labels, r.probabilities!, expected.data, ref);
        const n = agreement.voxels;
        const nnunetSeconds = caseJson.runtime_seconds.predict_s as number;
        rows.push({
          case: c.name,
          accumulate,
          voxels: n,
          seconds: Number(seconds.toFixed(2)),
          cpuSeconds: Number(cpuSeconds.toFixed(2)),
          voxelsPerCpuSecond: Math.round(n / cpuSeconds),
          nnunetSeconds,
          ratio: Number((nnunetSeconds / cpuSeconds).toFixed(2)),
          differing: agreement.differing,
          identicalPercent: Number((100 * agreement.identical).toFixed(4)),
          worstNnunetMarginAtDifference: Number(agreement.worstMargin.toFixed(4)),
          maxProbabilityDifference: Number(agreement.maxProbabilityDifference.toExponential(2)),
          meanProbabilityDifference: Number(agreement.meanProbabilityDifference.toExponential(2)),
        });
        process.stdout.write(`${JSON.stringify(rows.at(-1))}\n`);
      }
      for (const s of sessions) await s.release();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const machine = machineFacts({ onnxruntime: installedVersion("onnxruntime-node") });
  const loadAverage = os.loadavg()[0]!.toFixed(1);
  mergeResults({ nnunet: { machine, rows } });
  const table = rows
    .map(
      (r) =>
        `| ${r.case} | ${r.accumulate} | ${r.voxels} | ${r.seconds} | ${r.cpuSeconds} | ${r.voxelsPerCpuSecond} | ${r.nnunetSeconds} | ${r.ratio} | ${r.differing} (${r.identicalPercent} %) | ${r.worstNnunetMarginAtDifference} | ${r.maxProbabilityDifference} | ${r.meanProbabilityDifference} |`,
    )
    .join("\n");
  writeFileSync(
    path.join(ROOT, "bench", "NNUNET.md"),
    `# Imported nnU-Net models against nnU-Net's predictor

\`node dist/bench/nnunet.js\` on ${machine.cpu} (${machine.cores} cores visible), Node ${machine.node}, onnxruntime-node
${machine.onnxruntime}, one intra-op thread; ${machine.date}. nnU-Net's seconds are the fixtures' own
(\`case.json\` -> \`runtime_seconds.predict_s\`: nnU-Net 2.8.1, torch 1.13 on CPU, one thread, 2-core machine,
read + preprocess + sliding window + export). Ours: read NIfTI + preprocess + sliding window + way back (no file
written). The machine's two cores were shared with other work while this ran (load average ${loadAverage}), so
wall seconds are inflated; CPU seconds (this process, user + system) are what one thread spent, comparable with
nnU-Net's one-thread wall time on an idle machine. Ratio = nnU-Net seconds / our CPU seconds (above 1: faster).

| case | accumulate | voxels | wall s | CPU s | voxels per CPU s | nnU-Net s | ratio | labels differing from nnU-Net | worst nnU-Net top-2 margin there | max abs prob diff | mean abs prob diff |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${table}
`,
  );
});
