/**
 * Runs `poll` now and then `intervalMs` after each run ends (never two at once), reporting failures to
 * `onError` and going on. `stop()` waits for a run in progress.
 */
export function repeatEvery(
  intervalMs: number,
  poll: () => Promise<unknown>,
  onError: (err: Error) => void,
): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = poll()
      .then(() => undefined, onError)
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
