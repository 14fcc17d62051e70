/** Assertions the suites share. */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { EdgeError } from '../../reconciler/errors.js';

/** Awaits a promise that must reject with an EdgeError, and returns that error for further checks. */
export async function rejection(promise: Promise<unknown>): Promise<EdgeError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof EdgeError, `expected an EdgeError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

/** Fails unless strace runs here: it comes with systemd/install-deps.sh --e2e, and CI never skips a test. */
export async function assertStrace(): Promise<void> {
  const strace = await execa('strace', ['-V'], { reject: false }).catch(() => undefined);
  assert.equal(strace?.exitCode, 0, 'strace is needed: bash systemd/install-deps.sh --e2e');
}
