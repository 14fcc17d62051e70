/**
 * Polling for the tests: wait until something becomes true (or defined), with a generous deadline and, for
 * `waitUntil`, the last error as the cause when it never does.
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

/** Polls `probe` every 100 ms until it returns a defined value; throws naming `what` past the deadline. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
