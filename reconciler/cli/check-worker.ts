/** A worker thread of `check` (check-hosts.ts): checks its slice of hosts and posts the verdicts back. */
import { parentPort, workerData } from 'node:worker_threads';
import { checkSlice, type CheckSlice } from './check-hosts.js';

if (parentPort) {
  const port = parentPort;
  checkSlice(workerData as CheckSlice).then(
    (verdicts) => port.postMessage({ verdicts }),
    (error: unknown) => port.postMessage({ error: error instanceof Error ? error.message : String(error) }),
  );
}
