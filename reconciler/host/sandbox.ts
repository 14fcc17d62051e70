/**
 * Runs a command the repo supplies (a file's `validate` command, a validator over repo content, a role's hook)
 * confined: its own mount, network, PID, IPC and UTS namespaces (`unshare`), every mount read-only but its scratch
 * dir, no network (only a down loopback) unless the command declares it needs the host's, an unprivileged user without capabilities (`setpriv`), and a timeout that kills the
 * whole namespace. A non-root agent (CI) gets the same through an unprivileged user namespace, as its own user.
 * Where none can be had (no util-linux, namespaces refused), the command runs in its own process group with the
 * same timeout, and `confinement()` says why so that `check` can print it.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { chownSync, closeSync, constants, lchownSync, openSync, readdirSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { access, chmod, chown, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';
import { runTempPrefix, type RunTempKind } from './run-temp.js';

/** The uid and gid confined commands run as (`nobody`). */
export const SANDBOX_ID = 65534;

/** The size of the tmpfs a confined command writes to: enough for any validator, too small to fill a disk. */
const SCRATCH_SIZE = '64m';

/** How much of each output stream is kept (the tail). */
const MAX_OUTPUT_BYTES = 64 * 1024;

/** No grace: a command past its time has nothing left to finish, and under --kill-child this ends the namespace. */
const FORCED_KILL: NodeJS.Signals = 'SIGKILL';

/** After the process exits or is killed, how long its pipes may stay open before they are cut. */
const PIPE_GRACE_MS = 2_000;

/**
 * How a confined command runs: as `nobody`, root inside a user namespace of its own (`nobody-userns`); plainly as
 * `nobody` where the kernel refuses that user namespace (`nobody`); or, when the agent is not root (a CI runner),
 * as root of an unprivileged user namespace that maps the agent's own user (`self-userns`).
 */
export type ConfinementMode = 'nobody-userns' | 'nobody' | 'self-userns';

/** Whether commands can be confined here, and why not. */
export interface Confinement {
  confined: boolean;
  mode?: ConfinementMode;
  /** Why commands run unconfined (absent when confined). */
  reason?: string;
}

/** One command to run confined. */
export interface ConfinedCommand {
  argv: readonly string[];
  /** The only writable dir (from makeScratchDir): cwd, HOME and TMPDIR of the command. */
  scratchDir: string;
  /** The whole environment (nothing is inherited); HOME and TMPDIR are set to the scratch dir. */
  env: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Keep the host's network namespace (a hook that declares `network: true`); otherwise only a down loopback. */
  network?: boolean;
  /**
   * What the command writes into its scratch dir stays there (an app build writes its release): the dir itself is
   * bound writable instead of a bounded tmpfs copy that goes with the namespace.
   */
  persist?: boolean;
  /** The user and group it runs as when the agent is root (default `nobody`). */
  uid?: number;
  gid?: number;
}

/** How a confined command ended. */
export interface ConfinedResult {
  /** undefined when it was killed or could not start. */
  exitCode?: number;
  signal?: string;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  cancelled: boolean;
  /** Set when the command could not start: it is not installed, or not executable. */
  startError?: 'ENOENT' | 'EACCES';
  confinement: Confinement;
}

// Runs inside the new namespaces as root (of a user namespace, for self-userns): as real root, mount a tmpfs of
// SCRATCH_SIZE (nosuid, nodev) over the scratch dir and copy what it held into it (the shell's working directory
// is still the dir underneath), so what the command writes is bounded and gone with the namespace (self-userns and
// persist bind the scratch dir itself, nosuid, nodev); make every other mount that is not read-only yet read-only:
// the old mount API cannot do a tree at once, but one `mount -a` over a table of remounts does them all in one
// process ("/", which `mount -a` always skips, on its own). The table goes to fd 3, an unlinked file the agent
// opened (mount(8) reads a table from a regular file only), closed before the command starts. Then drop every
// capability, as real root first becoming the sandbox user. For nobody-userns that user then enters a user
// namespace where it is root (mapped to itself outside), still without capabilities: tools such as
// systemd-tmpfiles may then "chown root" what they create in their scratch root. A mount that cannot be made
// read-only fails the run (exit 125) rather than run open. Processes are what a confined command costs most (a
// mount(8) per mount point was two thirds of them), so the script starts as few as it can: no subshell per mount
// line (an escaped mount point only), no mktemp, no rmdir.
const SETUP_SCRIPT = `set -eu
scratch=$1; id=$2; mode=$3; persist=$4; gid=$5; shift 5
cd "$scratch"
if [ "$mode" = self-userns ] || [ "$persist" = 1 ]; then
  mount --bind -o nosuid,nodev "$scratch" "$scratch"
else
  mount -t tmpfs -o size=${SCRATCH_SIZE},nosuid,nodev,mode=0700,uid=$id,gid=$id edge-scratch "$scratch"
  cp -a ./. "$scratch/"
fi
cd "$scratch"
root=0; remounts=''
while read -r _ _ _ _ mp opts _; do
  path=$mp
  case "$mp" in *\\*) path=$(printf '%b' "$mp");; esac
  [ "$path" = "$scratch" ] && continue
  case "$path" in /proc|/proc/*) continue;; esac
  case ",$opts," in *,ro,*) continue;; esac
  if [ "$path" = / ]; then root=1; else remounts="$remounts
none $mp none remount,bind,ro 0 0"; fi
done < /proc/self/mountinfo
refuse() { echo "edge-reconciler sandbox: cannot make $1 read-only" >&2; exit 125; }
if [ "$root" = 1 ]; then mount -o remount,bind,ro / || refuse /; fi
if [ -n "$remounts" ]; then
  printf '%s\n' "$remounts" >&3
  mount -a -T /dev/fd/3 || refuse 'every mount'
fi
exec 3>&-
if [ "$mode" = self-userns ]; then
  exec setpriv --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
fi
drop="setpriv --reuid=$id --regid=$gid --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs --"
if [ "$mode" = nobody-userns ]; then
  exec $drop unshare --user --map-root-user -- setpriv --inh-caps=-all --bounding-set=-all -- "$@"
fi
exec $drop "$@"
`;

const UNSHARE_FLAGS = ['--mount', '--pid', '--ipc', '--uts', '--fork', '--kill-child', '--mount-proc'];

let probed: Promise<Confinement> | undefined;

/** Whether repo-supplied commands run confined on this machine (probed once per process, by a real run). */
export function confinement(): Promise<Confinement> {
  probed ??= probeConfinement();
  return probed;
}

async function probeConfinement(): Promise<Confinement> {
  if (process.platform !== 'linux') return { confined: false, reason: `namespaces need Linux (this is ${process.platform})` };
  for (const tool of ['unshare', 'setpriv', 'mount']) {
    if (!(await findExecutable(tool))) {
      return { confined: false, reason: `${tool} (util-linux) is not installed` };
    }
  }
  const root = process.getuid?.() === 0;
  const scratch = await mkdtemp(join(tmpdir(), runTempPrefix('probe')));
  try {
    await prepareScratch(scratch, root);
    const trial = (mode: ConfinementMode) =>
      spawnCollect(sandboxArgv(scratch, mode, ['/bin/sh', '-c', 'id -u']), { mountTable: true }, 10_000).then((result) => ({
        ok: result.exitCode === 0 && result.stdout.trim() === (mode === 'nobody' ? String(SANDBOX_ID) : '0'),
        why: (result.stderr.trim().split('\n').pop() ?? '') || `exit ${result.exitCode ?? result.signal ?? 'unknown'}`,
      }));
    const modes: ConfinementMode[] = root ? ['nobody-userns', 'nobody'] : ['self-userns'];
    let why = '';
    for (const mode of modes) {
      const result = await trial(mode);
      if (result.ok) return { confined: true, mode };
      why = result.why;
    }
    const who = root ? '' : ' (the agent is not root: it needs unprivileged user namespaces)';
    return { confined: false, reason: `the namespace sandbox does not start here${who}: ${why}` };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** How one confined command's sandbox is set up besides its scratch dir and mode. */
type SandboxOptions = Pick<ConfinedCommand, 'network' | 'persist' | 'uid' | 'gid'>;

/** The argv that runs `argv` confined (exported for the tests of its shape). */
export function sandboxArgv(scratch: string, mode: ConfinementMode, argv: readonly string[], options: SandboxOptions = {}): string[] {
  const user = mode === 'self-userns' ? ['--user', '--map-root-user'] : [];
  const net = options.network ? [] : ['--net'];
  const uid = options.uid ?? SANDBOX_ID;
  const gid = options.gid ?? (options.uid === undefined ? SANDBOX_ID : uid);
  const persist = options.persist ? '1' : '0';
  return ['unshare', ...user, ...net, ...UNSHARE_FLAGS, '/bin/sh', '-c', SETUP_SCRIPT, 'sandbox', scratch, String(uid), mode, persist, String(gid), ...argv];
}

/** A scratch dir for one confined command. */
export interface ScratchDir {
  /** The dir: the only path the command may write. */
  path: string;
  /** Gives everything written into it so far to the sandbox user (tools such as logrotate refuse others' files). */
  handOver(): Promise<void>;
  /** Removes it and everything the command left in it. */
  remove(): Promise<void>;
}

/**
 * A fresh scratch dir, writable by the sandbox user. It sits under a root-owned 0711 dir with an unguessable
 * name, so no other process of the sandbox user on the host can reach what a command leaves in it. It is named
 * after this process, like the staging dirs (run-temp.ts), so what a killed run leaves behind is cleaned with them.
 */
export async function makeScratchDir(kind: RunTempKind = 'sandbox'): Promise<ScratchDir> {
  const parent = await mkdtemp(join(tmpdir(), runTempPrefix(kind)));
  const path = join(parent, randomBytes(12).toString('hex'));
  await mkdir(path, { mode: 0o700 });
  const { mode } = await confinement();
  // Only a command that runs as nobody needs the dir handed over; under self-userns it already is the owner.
  const confined = mode === 'nobody' || mode === 'nobody-userns';
  if (confined) {
    await chmod(parent, 0o711);
    await prepareScratch(path, true);
  }
  return {
    path,
    handOver: async () => {
      if (confined) chownTree(path);
    },
    remove: () => rm(parent, { recursive: true, force: true }),
  };
}

// Synchronous: a scratch dir holds up to thousands of small files (caddy's site files), each chown cheaper than a
// trip through the thread pool.
function chownTree(dir: string): void {
  chownSync(dir, SANDBOX_ID, SANDBOX_ID);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) chownTree(path);
    else lchownSync(path, SANDBOX_ID, SANDBOX_ID);
  }
}

async function prepareScratch(dir: string, confined: boolean): Promise<void> {
  if (!confined) return;
  await chown(dir, SANDBOX_ID, SANDBOX_ID);
  await chmod(dir, 0o700);
}

/** Runs one command confined (or, where that is impossible, in its own process group); never throws for the command. */
export async function runConfined(command: ConfinedCommand): Promise<ConfinedResult> {
  return runWith(command, await confinement());
}

/**
 * Runs one command the way `mode` says: runConfined with the probed mode; with `{ confined: false }`, the fallback
 * of machines where confinement is unavailable (own process group, same timeout), which tests exercise directly.
 */
export async function runWith(command: ConfinedCommand, mode: Confinement): Promise<ConfinedResult> {
  const env: Record<string, string> = { ...command.env, HOME: command.scratchDir, TMPDIR: command.scratchDir };
  const [program = '', ...args] = command.argv;
  const resolved = await findExecutable(program, env.PATH ?? '/usr/bin:/bin');
  if (!resolved) {
    const exists = program.startsWith('/') && (await stat(program).catch(() => undefined)) !== undefined;
    return { ...emptyResult(mode), startError: exists ? 'EACCES' : 'ENOENT' };
  }
  const argv = mode.confined && mode.mode ? sandboxArgv(command.scratchDir, mode.mode, [resolved, ...args], command) : [resolved, ...args];
  const result = await spawnCollect(argv, { env, cwd: command.scratchDir, signal: command.signal, mountTable: mode.confined }, command.timeoutMs);
  return { ...result, confinement: mode };
}

function emptyResult(mode: Confinement): ConfinedResult {
  return { stdout: '', stderr: '', timedOut: false, cancelled: false, confinement: mode };
}

/**
 * The absolute path of an executable `name` on `path` (default: this process's PATH), or `name` itself when
 * absolute, if any. A relative path with a slash is never found: it would resolve against the agent's own working
 * directory.
 */
export async function findExecutable(name: string, path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): Promise<string | undefined> {
  if (name === '' || (name.includes('/') && !name.startsWith('/'))) return undefined;
  const candidates = name.includes('/') ? [name] : path.split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    const ok = await access(candidate, constants.X_OK).then(
      async () => (await stat(candidate)).isFile(),
      () => false,
    );
    if (ok) return candidate;
  }
  return undefined;
}

/** An unlinked file for a sandbox's table of remounts (fd 3 of its set-up script): it goes with its last descriptor. */
function openMountTable(): number {
  const path = join(tmpdir(), `${runTempPrefix('sandbox')}mounts-${randomBytes(6).toString('hex')}`);
  const fd = openSync(path, 'wx+', 0o600);
  unlinkSync(path);
  return fd;
}

/**
 * Spawns `argv` as the leader of its own process group and collects the tails of its output; with `mountTable`, an
 * empty file for the sandbox's table of remounts is its fd 3. On timeout or abort the whole group gets SIGKILL
 * (under `unshare --kill-child` that ends the whole PID namespace); when the leader exits, whatever it left in its
 * group is killed too, so nothing outlives the call.
 */
function spawnCollect(
  argv: readonly string[],
  options: { env?: Record<string, string>; cwd?: string; signal?: AbortSignal; mountTable?: boolean },
  timeoutMs: number,
): Promise<Omit<ConfinedResult, 'confinement'>> {
  return new Promise((resolve) => {
    const [program = '', ...args] = argv;
    const table = options.mountTable ? openMountTable() : undefined;
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(program, args, {
        cwd: options.cwd,
        env: options.env ?? { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe', ...(table === undefined ? [] : [table])],
      }) as ChildProcessByStdio<null, Readable, Readable>;
    } finally {
      // The child has its own descriptor now.
      if (table !== undefined) closeSync(table);
    }
    const stdout = new Tail();
    const stderr = new Tail();
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let timedOut = false;
    let cancelled = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, FORCED_KILL);
      } catch {
        // The group is gone already.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    const onAbort = (): void => {
      cancelled = true;
      killGroup();
    };
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({
        ...(exit?.code !== null && exit?.code !== undefined && !timedOut && !cancelled ? { exitCode: exit.code } : {}),
        ...(exit?.signal ? { signal: exit.signal } : {}),
        stdout: stdout.text(),
        stderr: stderr.text(),
        timedOut,
        cancelled,
      });
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      stderr.push(Buffer.from(`${error.message}\n`));
      exit ??= { code: null, signal: null };
      finish();
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      killGroup();
      graceTimer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish();
      }, PIPE_GRACE_MS);
    });
    child.once('close', finish);
  });
}

/** Keeps the last MAX_OUTPUT_BYTES of a stream. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > 2 * MAX_OUTPUT_BYTES) {
      const all = Buffer.concat(this.chunks);
      this.chunks = [all.subarray(all.length - MAX_OUTPUT_BYTES)];
      this.size = MAX_OUTPUT_BYTES;
    }
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - MAX_OUTPUT_BYTES)).toString('utf8');
  }
}
