/** Assertions the suites share. */
import assert from 'node:assert/strict';
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
