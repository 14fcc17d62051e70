/**
 * A real systemd to run e2e tests against: a Debian 12 root (built once by test/e2e/setup-root.sh) booted with
 * systemd-nspawn as PID 1 in its own network namespace, with caddy and ufw inside. Each boot gets a pristine
 * writable overlay of the cached root; see docs/e2e.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, open, readFile, readlink, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { ContainerError } from './container-error.js';
import {
  checkBind,
  checkPrerequisites,
  childrenOf,
  consoleTail,
  ensureRoot,
  isContainerInit,
  makeRoot,
  reapStaleRuns,
  removeRunDir,
  ROOT_CACHE,
  SETUP_ROOT_SCRIPT,
  STATE_DIR,
  waitForExit,
  writeRecord,
  type RunRecord,
} from './container-runs.js';
import { PROJECT_ROOT } from './paths.js';
import { waitUntil } from './wait.js';

/** Where the project is bind-mounted (read-only) inside the container. */
export const PROJECT_IN_CONTAINER = '/opt/edge-reconciler';

const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const TERMINATING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** A host folder bind-mounted into the container. */
export interface Bind {
  host: string;
  /** Defaults to the host path. */
  container?: string;
  readOnly?: boolean;
}

/** How to boot. */
export interface BootOptions {
  /** Extra bind mounts, e.g. a fixtures folder read-write. Never under /tmp, /var/tmp or /run. */
  binds?: Bind[];
  /** Until `systemctl is-system-running --wait` answers (default 60 s). */
  bootTimeoutMs?: number;
  /** Run setup-root.sh first, which builds the root when missing or outdated (default true). */
  ensureRoot?: boolean;
  /** `overlay` (default: a few ms) or `copy` (cp -a --reflink=auto: about 1 s). */
  copyMode?: 'overlay' | 'copy';
  /** Bind the host's node at /usr/local/bin/node (default true); false boots a container with no Node at all. */
  node?: boolean;
}

/** What a command inside printed and how it ended. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Options of {@link SystemdContainer.exec}. */
export interface ExecOptions {
  input?: string | Buffer;
  /** Added to a clean environment (PATH, LANG, HOME); the host's environment is not passed in. */
  env?: Record<string, string>;
  /** Default 30 s. */
  timeoutMs?: number;
  /** Throw on a non-zero exit (default true). */
  reject?: boolean;
}

/** The answer of {@link SystemdContainer.httpGet}. */
export interface HttpResponse {
  status: number;
  body: string;
}

let bootCount = 0;

/** A booted container. Always call {@link shutdown} (in mocha's `after`): it is safe to call twice. */
export class SystemdContainer {
  private stopping: Promise<void> | undefined;
  private readonly exitCleanup = (): void => this.cleanupSync();
  /** On SIGINT/SIGTERM/SIGHUP (no 'exit' event then): clean up, then let the signal end the process as it would have. */
  private readonly signalCleanup = (signal: NodeJS.Signals): void => {
    this.cleanupSync();
    process.kill(process.pid, signal);
  };

  private constructor(
    /** Host folder of this boot: root/ (the container's /), upper/, work/, nspawn.log, run.json. */
    readonly runDir: string,
    /** The machine name given to nspawn (unique per boot). */
    readonly machine: string,
    private readonly mode: 'overlay' | 'copy',
    private readonly nspawn: ChildProcess,
    /** The container's PID 1, as the host sees it. */
    public initPid = 0,
  ) {
    process.once('exit', this.exitCleanup);
    for (const signal of TERMINATING_SIGNALS) process.once(signal, this.signalCleanup);
  }

  /** The container's root folder on the host (point the reconciler's `--root` here). */
  get rootDir(): string {
    return join(this.runDir, 'root');
  }

  /** The host PID of the systemd-nspawn process. */
  get nspawnPid(): number {
    return this.nspawn.pid ?? 0;
  }

  /** Boots a fresh container from a pristine copy of the cached root and waits until systemd is up. */
  static async boot(options: BootOptions = {}): Promise<SystemdContainer> {
    if (process.getuid?.() !== 0) {
      throw new ContainerError('the e2e container needs root (systemd-nspawn, mount, nsenter); run the tests as root');
    }
    if (options.ensureRoot ?? true) await ensureRoot();
    await checkPrerequisites();
    if (!existsSync(join(ROOT_CACHE, 'sbin', 'init'))) {
      throw new ContainerError(`no cached root at ${ROOT_CACHE}: run ${SETUP_ROOT_SCRIPT}`);
    }
    const binds = (options.binds ?? []).map(checkBind);
    await reapStaleRuns();

    const id = `${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}-${process.pid}-${++bootCount}`;
    const runDir = join(STATE_DIR, id);
    const root = join(runDir, 'root');
    await mkdir(runDir, { recursive: true });
    const record: RunRecord = { ownerPid: process.pid, mode: options.copyMode ?? 'overlay' };
    await writeRecord(runDir, record);
    const mode = await makeRoot(runDir, record.mode).catch(async (error: unknown) => {
      await removeRunDir(runDir);
      throw new ContainerError(`cannot make a copy of ${ROOT_CACHE} in ${runDir}`, { cause: error });
    });
    record.mode = mode;
    await writeRecord(runDir, record);

    const log = await open(join(runDir, 'nspawn.log'), 'a');
    const machine = `edge-e2e-${id}`;
    const args = [
      '-D', root, `--machine=${machine}`, '--register=no', '--keep-unit', '--private-network',
      '--console=read-only', ...(options.node === false ? [] : ['--bind-ro=/usr/bin/node:/usr/local/bin/node']),
      `--bind-ro=${PROJECT_ROOT}:${PROJECT_IN_CONTAINER}`,
      ...binds.map((b) => `--bind${b.readOnly ? '-ro' : ''}=${b.host}:${b.container ?? b.host}`),
      '-b',
    ];
    // Its own process group: a Ctrl-C or a kill of the test's group reaches the test process, which cleans up.
    const child = spawn('systemd-nspawn', args, { stdio: ['ignore', log.fd, log.fd], detached: true });
    const spawned = new Promise<void>((resolveSpawn, rejectSpawn) => {
      child.once('spawn', resolveSpawn);
      child.once('error', rejectSpawn);
    });
    const container = new SystemdContainer(runDir, machine, mode, child);
    try {
      await log.close();
      await spawned;
      child.on('error', () => {}); // a failed kill of an already dead nspawn is not news
      record.nspawnPid = child.pid;
      await writeRecord(runDir, record);
      const deadline = Date.now() + (options.bootTimeoutMs ?? 60_000);
      container.initPid = await container.findInit(deadline);
      record.initPid = container.initPid;
      await writeRecord(runDir, record);
      await container.waitUntilBooted(deadline);
      // The example repo lets SSH in over tailscale0 only. Like a VM with Tailscale up, the container gets a tun
      // device of that name (the plan's lockout guard refuses those rules on a host without one).
      await execa('nsenter', ['-t', String(container.initPid), '-n', '--', 'ip', 'tuntap', 'add', 'dev', 'tailscale0', 'mode', 'tun']);
      await execa('nsenter', ['-t', String(container.initPid), '-n', '--', 'ip', 'link', 'set', 'tailscale0', 'up']);
      return container;
    } catch (error) {
      const evidence = await container.evidence();
      await container.shutdown();
      throw new ContainerError(`${(error as Error).message}\n${evidence}`, { cause: error });
    }
  }

  /** Runs argv inside the container (all its namespaces) via nsenter. */
  async exec(argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (!this.running()) throw new ContainerError(`container ${this.machine} is not running: cannot run ${argv[0]}`);
    const result = await execa('nsenter', ['-t', String(this.initPid), '-a', '--', ...argv], {
      input: options.input,
      env: { PATH: CONTAINER_PATH, LANG: 'C.UTF-8', HOME: '/root', TERM: 'dumb', SYSTEMD_COLORS: '0', ...options.env },
      extendEnv: false,
      timeout: options.timeoutMs ?? 30_000,
      reject: false,
      stripFinalNewline: false,
    });
    const outcome = { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
    if ((options.reject ?? true) && (result.failed || outcome.exitCode !== 0)) {
      const why = result.timedOut ? 'timed out' : `exited ${outcome.exitCode}`;
      throw new ContainerError(`in ${this.machine}: \`${argv.join(' ')}\` ${why}: ${outcome.stderr.trim().slice(-2000)}`, {
        cause: result,
      });
    }
    return outcome;
  }

  /** Whether the unit is active (`systemctl is-active`). */
  async isActive(unit: string): Promise<boolean> {
    return (await this.unitState(unit)) === 'active';
  }

  /** `systemctl is-active` as a word: active, inactive, failed, activating... */
  async unitState(unit: string): Promise<string> {
    return (await this.exec(['systemctl', 'is-active', unit], { reject: false })).stdout.trim();
  }

  /** The unit's main PID inside the container (0 when it has none). */
  async mainPid(unit: string): Promise<number> {
    return Number((await this.exec(['systemctl', 'show', '-p', 'MainPID', '--value', unit])).stdout.trim());
  }

  /** Reads a file as the container sees it (also under its own /run and /tmp, which the host cannot see). */
  async readFile(path: string): Promise<string> {
    return (await this.exec(['cat', '--', path])).stdout;
  }

  /** Writes a file as the container sees it, creating its folder; mode defaults to 0644. */
  async writeFile(path: string, content: string | Buffer, mode = 0o644): Promise<void> {
    const script = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && chmod "$2" -- "$1"';
    await this.exec(['sh', '-c', script, 'sh', path, mode.toString(8)], { input: content });
  }

  /** The host path of a path inside the container's root (persistent folders only: not its tmpfs /run, /tmp). */
  hostPath(path = '/'): string {
    const inside = resolve('/', path);
    return inside === '/' ? this.rootDir : join(this.rootDir, inside);
  }

  /** GETs a URL from inside the container (so it reaches the container's 127.0.0.1); throws if nothing answers. */
  async httpGet(url: string, timeoutMs = 5_000): Promise<HttpResponse> {
    const seconds = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
    const { stdout } = await this.exec(['curl', '-sS', '--max-time', seconds, '-w', '\n%{http_code}', url], {
      timeoutMs: timeoutMs + 5_000,
    });
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
  }

  /** The last lines of a unit's journal (the whole journal when unit is '*'). */
  async journal(unit: string, lines = 50): Promise<string> {
    const which = unit === '*' ? [] : ['-u', unit];
    return (await this.exec(['journalctl', '--no-pager', '-o', 'short-precise', '-n', String(lines), ...which])).stdout;
  }

  /** Powers the container off, waits for nspawn (then SIGKILL), removes the copy. Safe to call twice. */
  shutdown(timeoutMs = 20_000): Promise<void> {
    this.stopping ??= this.stop(timeoutMs);
    return this.stopping;
  }

  private async stop(timeoutMs: number): Promise<void> {
    if (this.running() && this.initPid > 0) {
      await this.exec(['systemctl', 'poweroff', '--no-block'], { reject: false, timeoutMs: 5_000 }).catch(() => {});
    }
    if (!(await waitForExit(this.nspawn, timeoutMs))) {
      this.killAll();
      if (!(await waitForExit(this.nspawn, 5_000))) {
        throw new ContainerError(`systemd-nspawn ${this.nspawnPid} of ${this.machine} survived SIGKILL`);
      }
    }
    // A SIGKILLed nspawn leaves its container running, reparented: end its PID namespace too.
    if (isContainerInit(this.initPid)) {
      process.kill(this.initPid, 'SIGKILL');
      await waitUntil(async () => !isContainerInit(this.initPid), { timeoutMs: 5_000, what: `${this.machine} to die` });
    }
    await removeRunDir(this.runDir);
    await rm(join('/run/systemd/nspawn/propagate', this.machine), { recursive: true, force: true }).catch(() => {});
    this.removeProcessListeners();
  }

  private removeProcessListeners(): void {
    process.removeListener('exit', this.exitCleanup);
    for (const signal of TERMINATING_SIGNALS) process.removeListener(signal, this.signalCleanup);
  }

  private running(): boolean {
    return this.nspawn.exitCode === null && this.nspawn.signalCode === null;
  }

  /** SIGKILL to the container's PID 1 ends its whole PID namespace; then nspawn itself. */
  private killAll(): void {
    if (isContainerInit(this.initPid)) process.kill(this.initPid, 'SIGKILL');
    if (this.running()) this.nspawn.kill('SIGKILL');
  }

  /** Last resort when the test process exits without shutdown (an uncaught error, mocha's SIGINT). */
  private cleanupSync(): void {
    this.removeProcessListeners();
    if (this.stopping) return;
    this.killAll();
    // Give the kernel a moment to tear the namespaces down before unmounting.
    spawnSync('sleep', ['0.2']);
    if (this.mode === 'overlay') spawnSync('umount', ['-l', this.rootDir]);
    spawnSync('rm', ['-rf', '--one-file-system', '--', this.runDir]);
  }

  /** The container's init is the child of nspawn that runs systemd in a PID namespace of its own. */
  private async findInit(deadline: number): Promise<number> {
    const ownPidNamespace = await readlink('/proc/self/ns/pid');
    for (;;) {
      if (!this.running()) throw new ContainerError(`systemd-nspawn exited (${this.nspawn.exitCode}) before booting`);
      for (const pid of await childrenOf(this.nspawnPid)) {
        const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
        const namespace = await readlink(`/proc/${pid}/ns/pid`).catch(() => ownPidNamespace);
        if (comm.trim() === 'systemd' && namespace !== ownPidNamespace) return pid;
      }
      if (Date.now() > deadline) throw new ContainerError(`no systemd child of systemd-nspawn ${this.nspawnPid} in time`);
      await sleep(20);
    }
  }

  /** Polls `systemctl is-system-running --wait` (which fails until systemd's bus is up) to running or degraded. */
  private async waitUntilBooted(deadline: number): Promise<void> {
    let state = '';
    while (Date.now() < deadline) {
      const answer = await this.exec(['systemctl', 'is-system-running', '--wait'], {
        reject: false,
        timeoutMs: Math.max(1_000, deadline - Date.now()),
      });
      state = answer.stdout.trim() || answer.stderr.trim();
      if (state === 'running' || state === 'degraded') return;
      if (!this.running()) break;
      await sleep(50);
    }
    throw new ContainerError(`container ${this.machine} did not boot: systemctl is-system-running says "${state}"`);
  }

  /** What went wrong at boot: failed units, the journal tail, the console tail. */
  private async evidence(): Promise<string> {
    const parts: string[] = [];
    if (this.running() && this.initPid > 0) {
      const failed = await this.exec(['systemctl', '--failed', '--no-pager'], { reject: false, timeoutMs: 5_000 });
      parts.push(`systemctl --failed:\n${failed.stdout}${failed.stderr}`);
      const journal = await this.exec(['journalctl', '--no-pager', '-n', '40'], { reject: false, timeoutMs: 5_000 });
      parts.push(`journal tail:\n${journal.stdout}${journal.stderr}`);
    }
    parts.push(`console tail (${join(this.runDir, 'nspawn.log')}):\n${consoleTail(this.runDir, 30)}`);
    return parts.join('\n');
  }
}
