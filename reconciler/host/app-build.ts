/**
 * Runs an app's build command in its release dir, confined: as the app's user, only the release dir writable, a
 * private /tmp, no network unless the app declares it, killed at its timeout. On a host that runs systemd as PID 1
 * (and the root is `/`) the build is a transient unit (`systemd-run --wait --pipe --collect`); elsewhere (the dev
 * sandbox, tests) it runs in the project's namespace sandbox (sandbox.ts) with the same confinement.
 */
import { existsSync } from 'node:fs';
import type { CommandRunner } from './host.js';
import { runConfined } from './sandbox.js';

/** How a release is built (`build:` of an app resource). */
export interface AppBuild {
  /** argv, run in the release dir (`./x` is a file of the release). */
  command: string[];
  timeoutSeconds: number;
  /** The build's environment besides PATH/HOME/LC_ALL (no secrets: the secret scan applies). */
  env: Record<string, string>;
  /** Give the build the host's network (default: none). */
  network: boolean;
}

/** The PATH a build gets. */
export const BUILD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** One build to run. */
export interface BuildRequest {
  app: string;
  sha: string;
  /** The release dir as the host sees it (`/srv/apps/lod/releases/.edge-tmp...`): the build's cwd and only writable path. */
  hostDir: string;
  /** The same dir on this machine's filesystem (under the root). */
  realDir: string;
  user: string;
  uid: number;
  gid: number;
  build: AppBuild;
  signal?: AbortSignal;
}

/** How a build ended. */
export interface BuildResult {
  /** undefined when it was killed or could not start. */
  exitCode?: number;
  timedOut: boolean;
  output: string;
  /** `systemd-run` or `sandbox`. */
  via: 'systemd-run' | 'sandbox';
}

/** True when builds run as transient units: systemd is PID 1 here and the host is the machine itself. */
export function canUseSystemdRun(root: string): boolean {
  return root === '/' && existsSync('/run/systemd/system');
}

/** The argv of the build's program: `./build.sh` is a file of the release. */
export function buildArgv(build: AppBuild, dir: string): string[] {
  const [program = '', ...args] = build.command;
  return [program.startsWith('./') ? `${dir}/${program.slice(2)}` : program, ...args];
}

/** The unit name of one build: unique per app and commit, safe for systemd. */
export function buildUnitName(app: string, sha: string): string {
  return `edge-build-${app}-${sha.slice(0, 12)}`;
}

/**
 * The `systemd-run` command line of a build: waits for it, pipes its output back, collects the unit even when it
 * fails, runs it as the app's user with only the release dir writable, a private /tmp and no new privileges, and
 * kills it at the timeout (RuntimeMaxSec). No network unless declared (PrivateNetwork).
 */
export function systemdRunArgv(request: Pick<BuildRequest, 'app' | 'sha' | 'hostDir' | 'user' | 'build'>): string[] {
  const { build, hostDir } = request;
  const properties = [
    `User=${request.user}`,
    `WorkingDirectory=${hostDir}`,
    'ProtectSystem=strict',
    `ReadWritePaths=${hostDir}`,
    'PrivateTmp=yes',
    'ProtectHome=yes',
    'NoNewPrivileges=yes',
    'PrivateDevices=yes',
    `RuntimeMaxSec=${build.timeoutSeconds}`,
    ...(build.network ? [] : ['PrivateNetwork=yes']),
  ];
  const env = { PATH: BUILD_PATH, HOME: hostDir, LC_ALL: 'C.UTF-8', ...build.env };
  return [
    'systemd-run',
    '--wait',
    '--pipe',
    '--collect',
    '--quiet',
    '--service-type=exec',
    `--unit=${buildUnitName(request.app, request.sha)}`,
    ...properties.map((property) => `--property=${property}`),
    ...Object.entries(env).map(([key, value]) => `--setenv=${key}=${value}`),
    '--',
    ...buildArgv(build, hostDir),
  ];
}

/** Runs one build; never throws for the build's own failure. */
export async function runBuild(request: BuildRequest, runner: CommandRunner, systemd: boolean): Promise<BuildResult> {
  const timeoutMs = request.build.timeoutSeconds * 1000;
  if (systemd) {
    // A little longer than RuntimeMaxSec: systemd kills the build, this only ends a hung systemd-run.
    const started = Date.now();
    const result = await runner.run(systemdRunArgv(request), { timeoutMs: timeoutMs + 30_000, signal: request.signal });
    const output = `${result.stdout}\n${result.stderr}`;
    // systemd-run --wait propagates the build's exit status; a unit killed at RuntimeMaxSec ends with 1, so a
    // failure that lasted the whole allowance is the timeout.
    const timedOut = result.timedOut || (result.exitCode !== 0 && Date.now() - started >= timeoutMs);
    return { exitCode: result.timedOut ? undefined : result.exitCode, timedOut, output, via: 'systemd-run' };
  }
  const [program = '', ...args] = request.build.command;
  // A file of the release runs by its path relative to the build's cwd: the dirs above the release (a private
  // sandbox root in tests) need not be searchable by the build's user.
  const argv = program.startsWith('./') ? ['/bin/sh', '-c', 'exec "$0" "$@"', program, ...args] : request.build.command;
  const result = await runConfined({
    argv,
    scratchDir: request.realDir,
    env: { PATH: BUILD_PATH, LC_ALL: 'C.UTF-8', ...request.build.env },
    timeoutMs,
    signal: request.signal,
    network: request.build.network,
    persist: true,
    uid: request.uid,
    gid: request.gid,
  });
  const startProblem = result.startError ? `${request.build.command[0] ?? ''}: ${result.startError === 'ENOENT' ? 'not found' : 'not executable'}\n` : '';
  return { exitCode: result.exitCode, timedOut: result.timedOut, output: `${startProblem}${result.stdout}\n${result.stderr}`, via: 'sandbox' };
}

/** The last `count` non-empty lines of a build's output, for its error message. */
export function lastLines(output: string, count = 5): string {
  return output.split('\n').map((line) => line.trimEnd()).filter((line) => line.trim() !== '').slice(-count).join(' | ');
}
