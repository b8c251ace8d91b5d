import { hostname } from "node:os";
import type { WorkerIdentity } from "./jobStore.js";

/** This process as a worker: host name:pid (shown per attempt in the API), with the given lease. */
export function defaultWorker(leaseMs = 60_000): WorkerIdentity {
  return { workerId: `${hostname()}:${process.pid}`, leaseMs };
}
