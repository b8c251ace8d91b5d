import { asDelineateError } from "../errors.js";
import type { JobStore } from "../jobs/jobStore.js";
import type { Logger } from "../log.js";
import type { Notifier } from "./notifiers.js";
import { type Notification, type NotificationOutcome, withoutPatient } from "./outbox.js";

export interface SenderOptions {
  maxAttempts: number;
  retryBaseSeconds: number;
  maxRetrySeconds: number;
  idlePollMs: number;
}

/**
 * Sends the outbox: takes the oldest due notification, hands it to its notifier, records the outcome. A peer that
 * is down or says "not now" gets it again with exponential backoff and jitter (capped at maxRetrySeconds); after
 * maxAttempts, or when the peer refuses it, it is recorded failed with the error. One loop per notifier, each
 * sending one at a time in order: a RIS that never answers holds up its own messages, not the webhook's.
 */
export class NotificationSender {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly sleepers = new Set<() => void>();

  constructor(
    private readonly store: JobStore,
    private readonly notifiers: ReadonlyMap<string, Notifier>,
    private readonly options: SenderOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = [...this.notifiers.values()].map((n) => this.work(n));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await Promise.all(this.loops);
  }

  wake(): void {
    for (const wakeUp of this.sleepers) wakeUp();
  }

  private async work(notifier: Notifier): Promise<void> {
    while (this.running) {
      let n: Notification | undefined;
      try {
        n = await this.store.claimNotification(Date.now(), notifier.name);
      } catch (thrown) {
        this.log.warn("could not claim a notification; will try again", { error: asDelineateError(thrown).message });
      }
      if (!n) {
        let wakeUp: (() => void) | undefined;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.options.idlePollMs);
          wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
          this.sleepers.add(wakeUp);
        });
        this.sleepers.delete(wakeUp!);
        continue;
      }
      const outcome = await this.sendOne(n, notifier);
      try {
        await this.store.finishNotification(n, outcome);
      } catch (thrown) {
        // left sending (or taken over by another sender after its lease): sent again after a restart or the claim lease,
        // which the message id lets a peer recognise
        this.log.error("could not record a notification's outcome", {
          notificationId: n.id,
          error: asDelineateError(thrown).message,
        });
      }
    }
  }

  private async sendOne(n: Notification, notifier: Notifier): Promise<NotificationOutcome> {
    // ids and codes only: the payload carries the patient's identifiers, which never go to the log
    const ctx = { notificationId: n.id, jobId: n.jobId, notifier: n.notifier, attempt: n.attempts };
    try {
      await notifier.send(n);
      this.log.info("notification sent", ctx);
      return { state: "sent" };
    } catch (thrown) {
      const err = asDelineateError(thrown);
      // a peer's own words are in the message, and may quote the patient back
      const error = { code: err.code, message: withoutPatient(err.message, n.payload) };
      if (err.retryable && n.attempts < this.options.maxAttempts) {
        const seconds = Math.min(
          this.options.maxRetrySeconds,
          this.options.retryBaseSeconds * 2 ** (n.attempts - 1) * (0.5 + Math.random()),
        );
        this.log.warn("notification will be sent again", {
          ...ctx,
          code: err.code,
          error: error.message,
          retryInSeconds: Math.round(seconds * 10) / 10,
        });
        return { state: "pending", retryAt: Date.now() + seconds * 1000, error };
      }
      this.log.error("notification failed", { ...ctx, code: err.code, error: error.message });
      return { state: "failed", error };
    }
  }
}
