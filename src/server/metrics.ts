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
    // one read of the store per scrape, shared by the four gauges (prom-client collects them concurrently)
    let pending: ReturnType<typeof cluster> | undefined;
    const read = () => {
      pending ??= cluster().finally(() => setTimeout(() => (pending = undefined), 250).unref());
      return pending;
    };
    new Gauge({
      name: "delineate_cluster_nodes_alive",
      help: "Nodes whose beat is recent",
      registers,
      async collect() {
        this.set((await read()).nodesAlive);
      },
    });
    new Gauge({
      name: "delineate_queue_depth",
      help: "Jobs waiting, per model (route jobs: model route)",
      labelNames: ["model"],
      registers,
      async collect() {
        const c = await read();
        this.reset();
        for (const [model, n] of Object.entries(c.queued)) this.set({ model }, n);
      },
    });
    new Gauge({
      name: "delineate_leases_expired",
      help: "Running jobs whose worker's lease expired, waiting to be taken over",
      registers,
      async collect() {
        this.set((await read()).leasesExpired);
      },
    });
    new Gauge({
      name: "delineate_jobs_taken_over",
      help: "Claims that took a job over from a worker whose lease had expired, ever",
      registers,
      async collect() {
        this.set((await read()).takenOver);
      },
    });
  }

  jobFinished(kind: JobKind, state: JobState, timings?: StageTimings): void {
    this.finished.inc({ kind, state });
    for (const [stage, seconds] of Object.entries(timings ?? {})) this.stageSeconds.observe({ stage }, seconds);
  }
}
