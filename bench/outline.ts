/**
 * `npm run bench:outline`: ct-body's classical body outline (src/inference/external.ts) on a 512×512×300 CT-like
 * phantom, against the implementation it replaced (harness/bodyOutlineReference.ts), interleaved in one run:
 * CPU and wall time of each, their ratio, and whether the outlines are identical. Writes bench/OUTLINE.md and the
 * "outline" entry of bench/results.json.
 */

import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { bodyOutlineReference } from "../harness/bodyOutlineReference.js";
import { patientCt } from "../harness/syntheticCt.js";
import { ROOT } from "../harness/tools.js";
import { bodyOutline, type ExternalOptions } from "../src/inference/external.js";
import { machineFacts, mergeResults, runBench } from "./record.js";

const DIMS = [512, 512, 300] as const;
const SPACING = [0.8, 0.8, 1];
// ct-body's manifest defaults (src/models/manifest.ts)
const OPTIONS: ExternalOptions = { label: 1, thresholdHu: -500, smoothMm: 1, openingMm: 5, combine: "replace" };
const ROUNDS = 2;

interface Timing {
  cpuSeconds: number;
  wallSeconds: number;
}

function timed(f: () => Uint8Array): { out: Uint8Array; t: Timing } {
  const cpu = process.cpuUsage(),
    wall = performance.now();
  const out = f();
  const used = process.cpuUsage(cpu);
  return { out, t: { cpuSeconds: (used.user + used.system) / 1e6, wallSeconds: (performance.now() - wall) / 1000 } };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r2 = (x: number) => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  const hu = patientCt(DIMS, 19);
  const ours: Timing[] = [],
    reference: Timing[] = [];
  let differing = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const a = timed(() => bodyOutlineReference(hu, DIMS, SPACING, OPTIONS));
    const b = timed(() => bodyOutline(hu, DIMS, SPACING, OPTIONS));
    reference.push(a.t);
    ours.push(b.t);
    for (let i = 0; i < a.out.length; i++) if (a.out[i] !== b.out[i]) differing++;
  }
  const summary = (ts: Timing[]) => ({
    cpuSeconds: r2(median(ts.map((t) => t.cpuSeconds))),
    wallSeconds: r2(median(ts.map((t) => t.wallSeconds))),
  });
  const result = {
    machine: machineFacts(),
    date: new Date().toISOString(),
    loadAverage: os.loadavg().map(r2),
    volume: `${DIMS.join("×")} at ${SPACING.join("×")} mm, harness/syntheticCt.ts patientCt(seed 19)`,
    options: OPTIONS,
    rounds: ROUNDS,
    ours: summary(ours),
    reference: summary(reference),
    cpuSpeedup: r2(median(reference.map((t) => t.cpuSeconds)) / median(ours.map((t) => t.cpuSeconds))),
    wallSpeedup: r2(median(reference.map((t) => t.wallSeconds)) / median(ours.map((t) => t.wallSeconds))),
    differingVoxels: differing,
  };
  mergeResults({ outline: result });
  const m = result.machine;
  const md = `# Benchmark: ct-body's body outline

Written by \`npm run bench:outline\` (bench/outline.ts); do not edit by hand. \`bodyOutline\` (src/inference/external.ts:
threshold after smoothing, in-plane opening by a disc, largest 3D component, restore, holes filled per slice) against
the implementation it replaced, kept as harness/bodyOutlineReference.ts, on the same volume, interleaved,
${ROUNDS} rounds each (medians). The volume: ${result.volume}; options: smoothing ${OPTIONS.smoothMm} mm, opening
${OPTIONS.openingMm} mm, threshold ${OPTIONS.thresholdHu} HU.

Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}; Node ${m.node}; ${result.date}. Load average at
the end: ${result.loadAverage.join(", ")}.

| implementation | CPU (s) | wall (s) |
| -------------- | ------- | -------- |
| bodyOutline (bit rows, runs) | ${result.ours.cpuSeconds} | ${result.ours.wallSeconds} |
| previous (distance transforms, floods) | ${result.reference.cpuSeconds} | ${result.reference.wallSeconds} |

Speed-up: ${result.cpuSpeedup}× in CPU time, ${result.wallSpeedup}× in wall time. Voxels differing between the two
outlines, all rounds: ${differing}.
`;
  writeFileSync(path.join(ROOT, "bench", "OUTLINE.md"), md);
  process.stdout.write(md);
  if (differing > 0) throw new Error(`the outlines differ in ${differing} voxels`);
}

runBench(main);
