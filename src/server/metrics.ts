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

  constructor(
    counts: (kind: JobKind) => Promise<Record<JobState, number>>,
    cluster?: () => Promise<{
      nodesAlive: number;
      queued: Record<string, number>;
      leasesExpired: number;
      takenOver: number;
    }>,
  ) {
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
    if (cluster) this.clusterGauges(cluster);
  }

  /** The cluster as the shared store sees it, read once per scrape. Labels: model ids (configuration), never UIDs. */
  private clusterGauges(
    cluster: () => Promise<{
      nodesAlive: number;
      queued: Record<string, number>;
      leasesExpired: number;
      takenOver: number;
    }>,
  ): void {
    const registers = [this.registry];
    // the first gauge reads the store once and sets the others, which are written out after it
    const gauges = {
      queued: undefined as Gauge<"model"> | undefined,
      expired: undefined as Gauge | undefined,
      takenOver: undefined as Gauge | undefined,
    };
    new Gauge({
      name: "delineate_cluster_nodes_alive",
      help: "Nodes whose beat is recent",
      registers,
      async collect() {
        const c = await cluster();
        this.set(c.nodesAlive);
        gauges.expired?.set(c.leasesExpired);
        gauges.takenOver?.set(c.takenOver);
        gauges.queued?.reset();
        for (const [model, n] of Object.entries(c.queued)) gauges.queued?.set({ model }, n);
      },
    });
    gauges.queued = new Gauge({
      name: "delineate_queue_depth",
      help: "Jobs waiting, per model (route jobs: model route)",
      labelNames: ["model"],
      registers,
    });
    gauges.expired = new Gauge({
      name: "delineate_leases_expired",
      help: "Running jobs whose worker's lease expired, waiting to be taken over",
      registers,
    });
    gauges.takenOver = new Gauge({
      name: "delineate_jobs_taken_over",
      help: "Claims that took a job over from a worker whose lease had expired, ever",
      registers,
    });
  }

  jobFinished(kind: JobKind, state: JobState, timings?: StageTimings): void {
    this.finished.inc({ kind, state });
    for (const [stage, seconds] of Object.entries(timings ?? {})) this.stageSeconds.observe({ stage }, seconds);
  }
}
