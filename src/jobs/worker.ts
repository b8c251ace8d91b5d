import { asDelineateError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Job, JobResult } from "./job.js";
import type { JobStore } from "./store.js";

export interface WorkerOptions {
  maxAttempts: number;
  retryBaseSeconds: number;
  /** how often to look for due jobs when nothing wakes the worker */
  idlePollMs: number;
}

/**
 * Takes queued jobs one at a time and runs them. A retryable error (the PACS down) puts the job back with
 * exponential backoff and jitter until maxAttempts; a study with nothing to segment is skipped; any other
 * error fails the job with its code, stage and message. The worker itself never stops on a job's error.
 */
export class JobWorker {
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly run: (job: Job) => Promise<JobResult>,
    private readonly options: WorkerOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.work();
  }

  /** Stops after the job in hand, if any. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
  }

  wake(): void {
    this.wakeUp?.();
  }

  private async work(): Promise<void> {
    while (this.running) {
      const job = this.store.claimNext();
      if (!job) {
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
          this.timer = setTimeout(resolve, this.options.idlePollMs);
        });
        clearTimeout(this.timer);
        this.wakeUp = undefined;
        continue;
      }
      await this.runOne(job);
    }
  }

  private async runOne(job: Job): Promise<void> {
    const ctx = { jobId: job.id, studyInstanceUID: job.studyInstanceUID, attempt: job.attempts };
    this.log.info("job started", ctx);
    try {
      const result = await this.run(job);
      this.store.complete(job.id, result);
      this.log.info("job done", { ...ctx, seriesInstanceUID: result.seriesInstanceUID, timings: result.timings });
    } catch (thrown) {
      const err = asDelineateError(thrown);
      const fields = { ...ctx, code: err.code, stage: err.stage, error: err.message };
      if (err.code === "DLN_ERR_NO_SERIES") {
        this.store.finishWithError(job.id, "skipped", err);
        this.log.info("job skipped", fields);
      } else if (err.retryable && job.attempts < this.options.maxAttempts) {
        const delay = this.options.retryBaseSeconds * 1000 * 2 ** (job.attempts - 1) * (0.5 + Math.random());
        this.store.finishWithError(job.id, "queued", err, Date.now() + delay);
        this.log.warn("job will be retried", { ...fields, retryInSeconds: Math.round(delay / 100) / 10 });
      } else {
        this.store.finishWithError(job.id, "failed", err);
        this.log.error("job failed", fields);
      }
    }
  }
}
