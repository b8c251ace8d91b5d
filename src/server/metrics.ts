import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { JOB_KINDS, JOB_STATES, type JobKind, type JobState, type StageTimings } from "../jobs/job.js";

/**
 * Prometheus metrics for one node (its own registry: no global state). Labels are states and stages only:
 * never UIDs or anything about a patient.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  private readonly finished: Counter<"kind" | "state">;
  private readonly stageSeconds: Histogram<"stage">;

  constructor(counts: (kind: JobKind) => Promise<Record<JobState, number>>) {
    collectDefaultMetrics({ register: this.registry, prefix: "delineate_process_" });
    this.finished = new Counter({
      name: "delineate_jobs_finished_total",
      help: "Jobs that ended, by kind (route, segment) and final state",
      labelNames: ["kind", "state"],
      registers: [this.registry],
    });
    this.stageSeconds = new Histogram({
      name: "delineate_stage_seconds",
      help: "Seconds a job spent in each stage of the path",
      labelNames: ["stage"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [this.registry],
    });
    new Gauge({
      name: "delineate_jobs",
      help: "Jobs in the store, by kind (route, segment) and state",
      labelNames: ["kind", "state"],
      registers: [this.registry],
      async collect() {
        for (const kind of JOB_KINDS) {
          const c = await counts(kind);
          for (const s of JOB_STATES) this.set({ kind, state: s }, c[s]);
        }
      },
    });
  }

  jobFinished(kind: JobKind, state: JobState, timings?: StageTimings): void {
    this.finished.inc({ kind, state });
    for (const [stage, seconds] of Object.entries(timings ?? {})) this.stageSeconds.observe({ stage }, seconds);
  }
}
