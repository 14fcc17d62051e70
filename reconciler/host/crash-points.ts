/**
 * Fault injection for the crash tests: the transaction calls `crashPoint(name)` at every step boundary. Inert
 * unless the environment asks: `EDGE_CRASH_LOG=<file>` appends each boundary's name as it is reached (so a test
 * can list them), `EDGE_CRASH_AT=<name>` kills the process with SIGKILL right there, as a power cut would.
 */
import { appendFileSync } from 'node:fs';

/** What a power cut feels like to a process: no handler runs. */
const POWER_CUT: NodeJS.Signals = 'SIGKILL';

/** Marks a step boundary. */
export function crashPoint(name: string): void {
  const log = process.env.EDGE_CRASH_LOG;
  if (log) appendFileSync(log, `${name}\n`);
  if (process.env.EDGE_CRASH_AT === name) process.kill(process.pid, POWER_CUT);
}
