/**
 * V8 hands a function to its optimizing compiler once it has run ~132 KB of bytecode. A reconcile lives a second or
 * two: at 1000 apps that compiler spent ~0.35 s of CPU on background threads in a one-change run (a fifth of the
 * run) and ~0.06 s in a no-op, mostly on code the process then barely used. Eight times the budget leaves only
 * truly hot code to it. Set as soon as a run meets a big host (the plan stages start, a live inventory or a secrets
 * dir of MANY entries), not at start-up: V8 refuses a code cache made under other flags, and set at start-up it
 * cost every small run ~45 ms (node's own modules loaded after it compiled afresh).
 */
import { setFlagsFromString } from 'node:v8';

/** From this many files (or secrets) a run, even a no-op, is long enough to tune V8 for. */
export const MANY = 500;

let shortRuns = false;

/** Raises V8's interrupt budget for the rest of the process; once. */
export function preferShortRuns(): void {
  if (shortRuns) return;
  shortRuns = true;
  setFlagsFromString('--interrupt-budget=1048576');
}
