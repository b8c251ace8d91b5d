import type { NpyArray } from "./npz.js";

/** How a run's labels and probabilities differ from nnU-Net's own prediction of the same case. */
export interface NnunetAgreement {
  voxels: number;
  differing: number;
  /** the share of voxels with the same label, 0..1 */
  identical: number;
  /** the largest top-2 margin of nnU-Net's probabilities at a voxel whose label differs: 0 for a near-tie */
  worstMargin: number;
  maxProbabilityDifference: number;
  meanProbabilityDifference: number;
}

/**
 * Labels and class probabilities (class-major, `reference.shape[0]` classes) against nnU-Net's: what the parity test
 * asserts on and the nnU-Net benchmark reports.
 */
export function nnunetAgreement(
  labels: ArrayLike<number>,
  probabilities: ArrayLike<number>,
  expectedLabels: ArrayLike<number>,
  reference: NpyArray,
): NnunetAgreement {
  const n = expectedLabels.length;
  const C = reference.shape[0]!;
  let differing = 0,
    worstMargin = 0,
    maxDiff = 0,
    sumDiff = 0;
  for (let v = 0; v < n; v++) {
    if (labels[v] !== expectedLabels[v]) {
      differing++;
      const p = Array.from({ length: C }, (_, k) => reference.data[k * n + v]!).sort((a, b) => b - a);
      worstMargin = Math.max(worstMargin, p[0]! - p[1]!);
    }
    for (let k = 0; k < C; k++) {
      const d = Math.abs(probabilities[k * n + v]! - reference.data[k * n + v]!);
      sumDiff += d;
      if (d > maxDiff) maxDiff = d;
    }
  }
  return {
    voxels: n,
    differing,
    identical: 1 - differing / n,
    worstMargin,
    maxProbabilityDifference: maxDiff,
    meanProbabilityDifference: sumDiff / n / C,
  };
}
