/**
 * The host-side plumbing of the e2e container (container.ts): the host tools it needs, the cached root and where
 * each boot's writable copy lives, making and removing those run dirs, reaping the ones of test processes that
 * died without shutdown, and the /proc reading that finds and checks nspawn's processes.
 */
import type { ChildProcess } from 'node:child_process';
import { access, constants, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync, readlinkSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { isAlive } from '../../reconciler/state/state-store.js';
import { ContainerError } from './container-error.js';
import { PROJECT_ROOT } from './paths.js';

/** The cached root, as setup-root.sh builds it. */
export const ROOT_CACHE = process.env.EDGE_E2E_ROOT_CACHE ?? '/var/cache/edge-reconciler/e2e-root';

/**
 * Where each boot's writable copy lives. Not under /tmp, /var/tmp or /run: the container's systemd-tmpfiles
 * would empty a host folder of those that is bind-mounted into it.
 */
export const STATE_DIR = process.env.EDGE_E2E_STATE_DIR ?? '/var/lib/edge-reconciler-e2e';

/** The script that builds the cached root (a cache hit takes milliseconds). */
export const SETUP_ROOT_SCRIPT = join(PROJECT_ROOT, 'test', 'e2e', 'setup-root.sh');

const FORBIDDEN_BIND_SOURCES = ['/tmp', '/var/tmp', '/run'];

/** What a run dir records so that a later run can clean up after a crashed one. */
export interface RunRecord {
  ownerPid: number;
  nspawnPid?: number;
  initPid?: number;
  mode: 'overlay' | 'copy';
}

/**
 * Throws a clear error when a tool the harness needs is missing from the given PATH (setup-root.sh installs them).
 */
export async function checkPrerequisites(path = process.env.PATH ?? ''): Promise<void> {
  for (const tool of ['systemd-nspawn', 'nsenter', 'mount', 'umount']) {
    const found = await Promise.any(
      path.split(delimiter).filter(Boolean).map((dir) => access(join(dir, tool), constants.X_OK)),
    ).then(() => true, () => false);
    if (!found) {
      const hint = tool === 'systemd-nspawn' ? ' (apt-get install -y systemd-container)' : '';
      throw new ContainerError(`${tool} not found on PATH${hint}: the e2e container cannot boot`);
    }
  }
}

/** Runs setup-root.sh, which builds the cached root when missing or outdated and installs the host tools. */
export async function ensureRoot(): Promise<void> {
  const result = await execa('bash', [SETUP_ROOT_SCRIPT], { reject: false, all: true, timeout: 15 * 60_000 });
  if (result.failed) {
    throw new ContainerError(`${SETUP_ROOT_SCRIPT} failed (${result.exitCode}):\n${result.all?.slice(-4000)}`);
  }
}

/** The bind with its host path made absolute; throws when that is a folder the container would empty. */
export function checkBind<T extends { host: string }>(bind: T): T {
  const host = resolve(bind.host);
  if (FORBIDDEN_BIND_SOURCES.some((dir) => host === dir || host.startsWith(`${dir}/`))) {
    throw new ContainerError(
      `cannot bind ${host}: the container's systemd-tmpfiles would empty it; use a folder under ${STATE_DIR} or /srv`,
    );
  }
  return { ...bind, host };
}

/** Makes runDir/root a pristine writable copy of the cached root; falls back to a copy where overlayfs fails. */
export async function makeRoot(runDir: string, wanted: 'overlay' | 'copy'): Promise<'overlay' | 'copy'> {
  const root = join(runDir, 'root');
  if (wanted === 'overlay') {
    await Promise.all(['root', 'upper', 'work'].map((dir) => mkdir(join(runDir, dir))));
    // redirect_dir=on lets directories of the lower root be renamed (else rename(2) gives EXDEV).
    const options = `lowerdir=${ROOT_CACHE},upperdir=${join(runDir, 'upper')},workdir=${join(runDir, 'work')}`;
    const mounted = await execa('mount', ['-t', 'overlay', 'overlay', '-o', `${options},redirect_dir=on`, root], {
      reject: false,
    });
    if (!mounted.failed) return 'overlay';
    await rm(root, { recursive: true });
  }
  await execa('cp', ['-a', '--reflink=auto', ROOT_CACHE, root]);
  return 'copy';
}

/** Unmounts runDir/root when it is a mount point (the overlay), then removes the run dir without crossing into other mounts. */
export async function removeRunDir(runDir: string): Promise<void> {
  const root = join(runDir, 'root');
  if (await isMountPoint(root)) {
    const unmounted = await execa('umount', [root], { reject: false });
    if (unmounted.failed) await execa('umount', ['-l', root]);
  }
  // --one-file-system: never descend into something still mounted there (like a bind of the project).
  await execa('rm', ['-rf', '--one-file-system', '--', runDir]);
}

async function isMountPoint(path: string): Promise<boolean> {
  const mountInfo = await readFile('/proc/self/mountinfo', 'utf8');
  return mountInfo.split('\n').some((line) => line.split(' ')[4] === path);
}

/** Cleans the run dirs of test processes that died without shutdown (SIGKILL, a crash). */
export async function reapStaleRuns(): Promise<void> {
  const entries = await readdir(STATE_DIR).catch(() => [] as string[]);
  for (const entry of entries) {
    const runDir = join(STATE_DIR, entry);
    let record: RunRecord;
    try {
      record = JSON.parse(await readFile(join(runDir, 'run.json'), 'utf8')) as RunRecord;
    } catch {
      continue;
    }
    if (record.ownerPid === process.pid || isAlive(record.ownerPid)) continue;
    if (isContainerInit(record.initPid)) process.kill(record.initPid!, 'SIGKILL');
    if (record.nspawnPid && commOf(record.nspawnPid) === 'systemd-nspawn') process.kill(record.nspawnPid, 'SIGKILL');
    await sleep(200);
    await removeRunDir(runDir);
  }
}

/** Writes the run dir's run.json, which reapStaleRuns reads. */
export function writeRecord(runDir: string, record: RunRecord): Promise<void> {
  return writeFile(join(runDir, 'run.json'), JSON.stringify(record));
}

/** The PIDs of the children of all threads of pid (none when it is gone). */
export async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const lists = await Promise.all(tasks.map((task) => readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '')));
  return lists.join(' ').split(/\s+/).filter(Boolean).map(Number);
}

/** Whether pid is (still) a systemd in a PID namespace other than ours: a container's init, not a zombie. */
export function isContainerInit(pid: number | undefined): boolean {
  if (!pid || commOf(pid) !== 'systemd') return false;
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
    return state !== 'Z' && readlinkSync(`/proc/${pid}/ns/pid`) !== readlinkSync('/proc/self/ns/pid');
  } catch {
    return false;
  }
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Waits for child to exit: true when it has (or already had), false when timeoutMs passed first. */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => resolveExit(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveExit(true);
    });
  });
}

/** The last lines of the run dir's nspawn.log (the container's console), without colour codes. */
export function consoleTail(runDir: string, lines: number): string {
  try {
    // eslint-disable-next-line no-control-regex
    const text = readFileSync(join(runDir, 'nspawn.log'), 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no console log)';
  }
}
