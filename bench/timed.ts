/**
 * One measured process, as a VM runs it: wall and CPU seconds (user + sys, children included) from bash's `time`,
 * in the environment systemd gives a system service (UNIT_ENV), not the shell's. A shell can carry settings that
 * every Node process pays for at start-up and no unit sets: this sandbox's shell sets NODE_EXTRA_CA_CERTS, whose
 * certificate bundle costs each process ~35 ms of CPU to parse (`edge-reconciler --version`: 0.13 s with it,
 * 0.09 s without).
 */
import { execFileSync } from 'node:child_process';

/** One process: wall and CPU seconds (user + sys, children included). */
export interface Timing {
  wall: number;
  cpu: number;
}

/** What systemd gives a system service with no Environment= of its own: PATH and the system locale. */
export const UNIT_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
};

/**
 * Runs argv under bash's `time` in UNIT_ENV, stdin from /dev/null as under systemd (bash without SHLVL and with a
 * socket for stdin takes itself for an sshd session and reads ~/.bashrc); throws on a non-zero exit unless `allowFail`.
 */
export function timed(argv: readonly string[], allowFail = false): Timing {
  const script = `TIMEFORMAT="%R %U %S"; { time "$@" >/dev/null 2>&1 ${allowFail ? '|| true' : ''}; } 2>&1`;
  const out = execFileSync('/bin/bash', ['-c', script, 'timed', ...argv], { encoding: 'utf8', env: { ...UNIT_ENV }, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 });
  const [wall, user, sys] = (out.trim().split('\n').pop() ?? '').split(' ').map(Number) as [number, number, number];
  return { wall, cpu: user + sys };
}
