/**
 * Polling for the e2e tests: wait until something inside or outside the container becomes true, with a deadline
 * and the last error as the cause when it never does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerError } from './container-error.js';

/** Polls check until it returns a truthy value or the time runs out; returns that value, or throws the last error. */
export async function waitUntil<T>(
  check: () => Promise<T>,
  { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = undefined;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new ContainerError(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last });
    }
    await sleep(intervalMs);
  }
}
