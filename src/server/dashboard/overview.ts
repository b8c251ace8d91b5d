import { statfs } from "node:fs/promises";
import type { JobState, StageTimings } from "../../jobs/job.js";
import type { SourceKind } from "../../pacs/source.js";
import { type DashboardStore, segmentOf } from "./jobReader.js";

export const DAY_MS = 24 * 3600 * 1000;
const PACS_CHECK_MS = 5000;

export interface ModelInfo {
  id: string;
  version: string;
  executionProvider: string;
}

/** The ingest paths a node has on, by the source their studies are read from. */
export interface IngestInfo {
  source: SourceKind;
  /** e.g. "Orthanc change feed", "webhook", "QIDO-RS polling", "STOW-RS" */
  via: string[];
}

export interface OverviewDeps {
  store: DashboardStore;
  models: () => ModelInfo[];
  ingest: IngestInfo[];
  dataDir: string;
  /** resolves when the PACS answers; rejects with why not */
  checkPacs: () => Promise<void>;
  /** no study for longer than this is an alarm (0: never) */
  noStudyAlertMs: number;
  now?: () => number;
}

export interface StageFigures {
  stage: string;
  count: number;
  median: number;
  p95: number;
}

export interface Overview {
  /** what is wrong; empty when all is well */
  alarms: string[];
  ingest: { source: SourceKind; via: string[]; lastStudyAt?: number }[];
  /** queued and running segment jobs per model; route jobs under "(routing)" */
  queue: { model: string; queued: number; running: number }[];
  last24h: { done: number; failed: number; dead: number; skipped: number; cancelled: number };
  stages: StageFigures[];
  models: ModelInfo[];
  disk?: { freeBytes: number; totalBytes: number };
  pacs: { reachable: boolean; error?: string; checkedAt: number };
  counts: Record<JobState, number>;
}

/** The q-quantile of sorted values by the nearest-rank method (what an operator reads as "95 % took at most"). */
export function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const STAGE_ORDER: (keyof StageTimings)[] = ["route", "fetch", "volume", "inference", "encode", "store"];

/**
 * The overview's figures, computed from the store on each request (a few indexed queries and one scan of the last
 * day's jobs), plus a PACS check cached for `pacsCacheMs` so a page left open does not poll the PACS every second.
 */
export class OverviewSource {
  private pacs: Overview["pacs"] | undefined;
  private pacsCheck: Promise<Overview["pacs"]> | undefined;

  constructor(
    private readonly deps: OverviewDeps,
    private readonly pacsCacheMs = 15_000,
  ) {}

  async get(): Promise<Overview> {
    const now = (this.deps.now ?? Date.now)();
    const { store } = this.deps;
    const counts = await store.counts();
    const recent = await store.updatedSince(now - DAY_MS);
    const last24h = { done: 0, failed: 0, dead: 0, skipped: 0, cancelled: 0 };
    const perStage = new Map<string, number[]>();
    for (const j of recent) {
      if (j.state in last24h) last24h[j.state as keyof typeof last24h]++;
      if (j.state !== "done") continue;
      for (const [stage, s] of Object.entries(j.timings ?? {})) {
        if (typeof s === "number") perStage.set(stage, [...(perStage.get(stage) ?? []), s]);
      }
    }
    const stages = STAGE_ORDER.filter((s) => perStage.has(s)).map((stage) => {
      const v = perStage.get(stage)!.sort((a, b) => a - b);
      return { stage, count: v.length, median: quantile(v, 0.5), p95: quantile(v, 0.95) };
    });

    const queue = new Map<string, { model: string; queued: number; running: number }>();
    for (const state of ["queued", "running"] as const) {
      for (const j of await store.list({ state }, 100_000)) {
        const model = segmentOf(j)?.modelId ?? "(routing)";
        const q = queue.get(model) ?? { model, queued: 0, running: 0 };
        q[state]++;
        queue.set(model, q);
      }
    }
    const models = this.deps.models();
    for (const m of models) if (!queue.has(m.id)) queue.set(m.id, { model: m.id, queued: 0, running: 0 });

    const last = await store.lastAnnounced();
    const ingest = this.deps.ingest.map((i) => ({
      ...i,
      ...(last[i.source] !== undefined ? { lastStudyAt: last[i.source] } : {}),
    }));
    const [disk, pacs] = await Promise.all([this.disk(), this.checkPacs(now)]);

    const alarms: string[] = [];
    if (!pacs.reachable) alarms.push(`the PACS does not answer: ${pacs.error}`);
    if (counts.dead)
      alarms.push(`${counts.dead} dead job${counts.dead === 1 ? "" : "s"} (a PACS error outlasted every attempt)`);
    const newest = Math.max(0, ...ingest.map((i) => i.lastStudyAt ?? 0));
    if (this.deps.noStudyAlertMs > 0 && now - newest > this.deps.noStudyAlertMs)
      alarms.push(
        newest
          ? `no study has arrived for ${Math.round((now - newest) / 60_000)} min (alarm after ${Math.round(this.deps.noStudyAlertMs / 60_000)} min)`
          : "no study has arrived yet",
      );
    if (disk && disk.freeBytes < 0.05 * disk.totalBytes) alarms.push("the data folder's disk is over 95 % full");
    return {
      alarms,
      ingest,
      queue: [...queue.values()],
      last24h,
      stages,
      models,
      ...(disk ? { disk } : {}),
      pacs,
      counts,
    };
  }

  private async disk(): Promise<Overview["disk"]> {
    try {
      const s = await statfs(this.deps.dataDir);
      return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch {
      // a data folder that cannot be measured shows as "unknown" on the overview; the node runs on regardless
      return undefined;
    }
  }

  private async checkPacs(now: number): Promise<Overview["pacs"]> {
    if (this.pacs && now - this.pacs.checkedAt < this.pacsCacheMs) return this.pacs;
    if (!this.pacsCheck) {
      // bounded here, whatever the PACS client's own timeout: the page must not hang on a PACS that hangs
      const bounded = Promise.race([
        this.deps.checkPacs(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`no answer within ${PACS_CHECK_MS / 1000} s`)), PACS_CHECK_MS).unref(),
        ),
      ]);
      this.pacsCheck = bounded
        .then(
          (): Overview["pacs"] => ({ reachable: true, checkedAt: now }),
          (err: unknown): Overview["pacs"] => ({
            reachable: false,
            error: err instanceof Error ? err.message : String(err),
            checkedAt: now,
          }),
        )
        .then((r) => {
          this.pacs = r;
          this.pacsCheck = undefined;
          return r;
        });
    }
    return this.pacsCheck;
  }
}
