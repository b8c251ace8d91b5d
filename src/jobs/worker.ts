import { asDelineateError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Job, JobKind, JobResult, JobState, StageTimings } from "./job.js";
import type { JobStore } from "./jobStore.js";

const TAKEN_OVER = "job taken over by another worker; this attempt stops without writing";

export interface WorkerOptions {
  /** jobs run at once; more studies wait in the store (the back-pressure) */
  concurrency: number;
  maxAttempts: number;
  retryBaseSeconds: number;
  /** how often to look for due jobs when nothing wakes the worker */
  idlePollMs: number;
  /** how often a running job's lease is renewed (a third of the lease, so two missed beats still hold it) */
  heartbeatMs: number;
  /**
   * A route job whose study the PACS does not have (DLN_ERR_STUDY_NOT_FOUND) is tried again, with backoff and
   * whatever its attempts, until this long after it was made; then it fails. 0: it fails at once.
   */
  absentStudyMs?: number;
}

/**
 * Runs queued jobs, `concurrency` at a time. A retryable error (the PACS down) puts the job back with
 * exponential backoff and jitter; after maxAttempts it goes to the dead letter (state dead). A study with
 * nothing for any rule is skipped; a study the PACS does not have (yet) is waited for up to absentStudyMs after its
 * job was made, then fails; a cancelled job ends cancelled; any other error fails the job with its code,
 * stage and message. The worker itself never stops on a job's error.
 */
export class JobWorker {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly sleepers = new Set<() => void>();

  constructor(
    private readonly store: JobStore,
    private readonly run: (job: Job) => Promise<JobResult>,
    private readonly options: WorkerOptions,
    private readonly log: Logger,
    /** told of every job that ends (metrics) */
    private readonly onFinished: (kind: JobKind, state: JobState, timings?: StageTimings) => void = () => {},
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = Array.from({ length: this.options.concurrency }, () => this.work());
  }

  /** Stops after the job in hand, if any. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await Promise.all(this.loops);
  }

  wake(): void {
    for (const wakeUp of this.sleepers) wakeUp();
  }

  private async work(): Promise<void> {
    while (this.running) {
      const job = await this.claim();
      if (!job) {
        let timer: NodeJS.Timeout | undefined;
        let wakeUp: (() => void) | undefined;
        await new Promise<void>((resolve) => {
          wakeUp = resolve;
          this.sleepers.add(resolve);
          timer = setTimeout(resolve, this.options.idlePollMs);
        });
        clearTimeout(timer);
        this.sleepers.delete(wakeUp!);
        continue;
      }
      try {
        await this.runOne(job);
      } catch (thrown) {
        // the store could not record the outcome; the job is found again (at start-up, or when its lease expires)
        this.log.error("could not record a job's outcome", { jobId: job.id, error: asDelineateError(thrown).message });
      }
    }
  }

  /** The next due job, or undefined when there is none or the store cannot be reached (tried again later). */
  private async claim(): Promise<Job | undefined> {
    try {
      return await this.store.claimNext();
    } catch (thrown) {
      this.log.warn("could not claim a job; will try again", { error: asDelineateError(thrown).message });
      return undefined;
    }
  }

  private async runOne(job: Job): Promise<void> {
    const ctx = {
      jobId: job.id,
      kind: job.kind,
      studyInstanceUID: job.studyInstanceUID,
      ...(job.kind === "segment"
        ? { seriesInstanceUID: job.segment.seriesInstanceUID, model: job.segment.modelId }
        : {}),
      attempt: job.attempts,
    };
    this.log.info("job started", ctx);
    const beat = setInterval(() => {
      this.store.heartbeat(job).then(
        (held) => {
          if (!held) this.log.warn("job lease lost; its stages stop and it writes nothing", ctx);
        },
        (err) => this.log.warn("job lease not renewed; will try again", { ...ctx, error: (err as Error).message }),
      );
    }, this.options.heartbeatMs);
    try {
      await this.attempt(job, ctx);
    } finally {
      clearInterval(beat);
    }
  }

  private async attempt(job: Job, ctx: Record<string, unknown>): Promise<void> {
    let result: JobResult;
    try {
      result = await this.run(job);
    } catch (thrown) {
      await this.failed(job, ctx, thrown);
      return;
    }
    try {
      const newJobs = await this.store.complete(job, result);
      this.onFinished(job.kind, "done", result.timings);
      this.log.info("job done", { ...ctx, timings: result.timings, ...(result.kind === "route" ? { newJobs } : {}) });
    } catch (thrown) {
      // not the job's failure: the store refused (a lost lease) or could not record it; the lease runs out and the
      // job is taken again, and a result already stored is recognised in the destination
      const err = asDelineateError(thrown);
      const fields = { ...ctx, code: err.code, error: err.message };
      if (err.code === "DLN_ERR_LEASE_LOST") this.log.warn(TAKEN_OVER, fields);
      else this.log.warn("job done, but its outcome was not recorded; it will be taken again", fields);
    }
  }

  /** Records why an attempt failed: retried later, dead-lettered, failed, skipped or cancelled. */
  private async failed(job: Job, ctx: Record<string, unknown>, thrown: unknown): Promise<void> {
    const err = asDelineateError(thrown);
    const fields = { ...ctx, code: err.code, stage: err.stage, error: err.message };
    if (err.code === "DLN_ERR_LEASE_LOST") {
      // another worker holds the job now: this attempt's outcome is not ours to write
      this.log.warn(TAKEN_OVER, fields);
    } else if (err.code === "DLN_ERR_NO_SERIES") {
      await this.store.finishWithError(job, "skipped", err);
      this.onFinished(job.kind, "skipped");
      this.log.info("job skipped", fields);
    } else if (err.code === "DLN_ERR_CANCELLED") {
      await this.store.finishWithError(job, "cancelled", err);
      this.onFinished(job.kind, "cancelled");
      this.log.info("job cancelled", fields);
    } else if (err.code === "DLN_ERR_STUDY_NOT_FOUND" && job.source === "pacs" && this.absentWait(job) > 0) {
      const delay = Math.min(this.backoff(job), this.absentWait(job));
      await this.store.finishWithError(job, "queued", err, Date.now() + delay);
      this.log.info("study not in the PACS yet; will look again", {
        ...fields,
        retryInSeconds: Math.round(delay / 100) / 10,
      });
    } else if (err.retryable && job.attempts < this.options.maxAttempts) {
      const delay = this.backoff(job);
      await this.store.finishWithError(job, "queued", err, Date.now() + delay);
      this.log.warn("job will be retried", { ...fields, retryInSeconds: Math.round(delay / 100) / 10 });
    } else if (err.retryable) {
      await this.store.finishWithError(job, "dead", err);
      this.onFinished(job.kind, "dead");
      this.log.error("job gave up after its last attempt (dead letter)", fields);
    } else {
      await this.store.finishWithError(job, "failed", err);
      this.onFinished(job.kind, "failed");
      this.log.error("job failed", fields);
    }
  }

  /** Exponential backoff with jitter after the job's attempts so far. */
  private backoff(job: Job): number {
    return this.options.retryBaseSeconds * 1000 * 2 ** (job.attempts - 1) * (0.5 + Math.random());
  }

  /** How long a job whose study is absent may still wait for it (ms; 0 or less: no longer). */
  private absentWait(job: Job): number {
    return job.createdAt + (this.options.absentStudyMs ?? 0) - Date.now();
  }
}
