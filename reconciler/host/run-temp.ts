/**
 * The names of what a run makes in the temp dir: the validators' staging dir and the scratch dir of every confined
 * command (`edge-validate-<pid>-<kind>-XXXXXX`). The pid is what lets the next run remove what a killed one left
 * behind (state/leftovers.ts), and only that: the dirs of a run still alive, a `check` beside the agent say, stay.
 * Several of them hold rendered files, so secrets.
 */

/** What a temp dir is for. */
export type RunTempKind = 'staging' | 'probe' | 'sandbox' | 'file' | 'caddy' | 'hook';

/** The name prefix of a temp dir of this kind made by process `pid` (this one by default). */
export function runTempPrefix(kind: RunTempKind, pid = process.pid): string {
  return `edge-validate-${pid}-${kind}-`;
}

const OWNED = /^edge-validate-(\d+)-/;
/** Names of versions before the pid was in every name: scratch dirs carried the kind only. */
const UNOWNED = /^edge-validate-(?:probe|sandbox|file|caddy|hook)-/;

/**
 * Who made a temp dir of this name: its pid, `'unknown'` for a name of an earlier version (no pid), or undefined
 * when the name is not one of ours.
 */
export function runTempOwner(name: string): number | 'unknown' | undefined {
  const pid = Number(OWNED.exec(name)?.[1]);
  if (pid > 0) return pid;
  return UNOWNED.test(name) ? 'unknown' : undefined;
}
