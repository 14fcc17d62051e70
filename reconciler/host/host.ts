/**
 * The host adapter: the only module that touches the live machine. Every host path is resolved under a
 * configurable root (`/` on a VM, a sandbox dir in tests and the quick start), and never through a symlink.
 */
import { readFileSync } from 'node:fs';
import { chown, lstat, mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { networkFactsFor, type NetworkFacts } from './network-facts.js';

/** What is at a managed path on the host right now. */
export interface LiveFile {
  /** `file`, or what stands there instead (a directory or symlink is never followed or overwritten silently). */
  type: 'file' | 'directory' | 'symlink' | 'other';
  content: Buffer;
  mode: number;
  uid: number;
  gid: number;
}

/** Resolves user and group names to ids, from the machine's own /etc/passwd and /etc/group. */
export interface IdResolver {
  uid(name: string): number | undefined;
  gid(name: string): number | undefined;
}

/** The live host under `root`. */
export class Host {
  constructor(
    readonly root: string,
    readonly ids: IdResolver = systemIds(),
    /** The live network, for the firewall guard (nothing is known of it under a sandbox root). */
    readonly network: NetworkFacts = networkFactsFor(root),
  ) {}

  /** The host path `path` (absolute, e.g. `/etc/caddy/Caddyfile`) on this machine's filesystem. */
  resolve(path: string): string {
    return this.root === '/' ? path : join(this.root, path);
  }

  /** Reads what stands at `path`, without following a symlink; undefined when nothing is there. */
  async read(path: string): Promise<LiveFile | undefined> {
    const real = this.resolve(path);
    const stat = await lstat(real).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
      throw error;
    });
    if (!stat) return undefined;
    const type = stat.isFile() ? 'file' : stat.isDirectory() ? 'directory' : stat.isSymbolicLink() ? 'symlink' : 'other';
    const content = type === 'file' ? await readFile(real) : Buffer.alloc(0);
    return { type, content, mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
  }

  /**
   * Writes `content` to `path` atomically: a temp file beside the target, owner and mode set, fsynced, renamed
   * into place, the directory fsynced. Parent directories are created (0755, root) and must not be symlinks.
   */
  async writeAtomic(path: string, content: Buffer | string, mode: number, uid: number, gid: number): Promise<void> {
    await this.ensureDir(dirname(path));
    const real = this.resolve(path);
    const temp = join(dirname(real), `${TEMP_PREFIX}${basename(real)}.${randomBytes(4).toString('hex')}`);
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(content);
      if (this.canChown) await handle.chown(uid, gid);
      await handle.chmod(mode);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await handle.close();
    const existing = await lstat(real).catch(() => undefined);
    if (existing?.isDirectory()) {
      await unlink(temp);
      throw new Error(`${path} is a directory; refusing to replace it with a file`);
    }
    await rename(temp, real);
    await syncDir(dirname(real));
  }

  /** Sets mode and owner of an existing file without rewriting it. */
  async setAttributes(path: string, mode: number, uid: number, gid: number): Promise<void> {
    const real = this.resolve(path);
    if (this.canChown) await chown(real, uid, gid);
    const handle = await open(real, 'r');
    try {
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Removes a managed file (never a directory); no error when it is already gone. */
  async remove(path: string): Promise<void> {
    const real = this.resolve(path);
    const stat = await lstat(real).catch(() => undefined);
    if (!stat) return;
    if (stat.isDirectory()) throw new Error(`${path} is a directory; refusing to remove it`);
    await unlink(real);
    await syncDir(dirname(real));
  }

  /** Removes temp files a crashed write left beside `path`. */
  async removeTempFiles(path: string): Promise<void> {
    const dir = dirname(this.resolve(path));
    const prefix = `${TEMP_PREFIX}${basename(path)}.`;
    const entries = await readdir(dir).catch(() => [] as string[]);
    for (const entry of entries) if (entry.startsWith(prefix)) await rm(join(dir, entry), { force: true });
  }

  /** Throws SymlinkRefusedError when a directory on the way to `path` is a symlink (nothing is created). */
  async checkNoSymlinks(path: string): Promise<void> {
    let current = '';
    for (const segment of dirname(path).split('/').filter(Boolean)) {
      current += `/${segment}`;
      const stat = await lstat(this.resolve(current)).catch(() => undefined);
      if (!stat) return;
      if (stat.isSymbolicLink()) throw new SymlinkRefusedError(current);
    }
  }

  /** Creates `dir` and its parents under the root; refuses a symlink anywhere on the way. */
  async ensureDir(dir: string): Promise<void> {
    await mkdir(this.root, { recursive: true });
    let current = '';
    for (const segment of dir.split('/').filter(Boolean)) {
      current += `/${segment}`;
      const real = this.resolve(current);
      const stat = await lstat(real).catch(() => undefined);
      if (!stat) {
        await mkdir(real, { mode: 0o755 });
        continue;
      }
      if (stat.isSymbolicLink()) throw new SymlinkRefusedError(current);
      if (!stat.isDirectory()) throw new Error(`${current} is not a directory`);
    }
  }

  /** True when files can be given another owner (root on a VM; tests as a normal user keep their own). */
  private get canChown(): boolean {
    return process.getuid?.() === 0;
  }
}

/** Temp files are hidden, named after their target, and recognisable for clean-up after a crash. */
export const TEMP_PREFIX = '.edge-tmp.';

/** A write would go through a symlink: a trick to escape the allowed roots. */
export class SymlinkRefusedError extends Error {
  constructor(readonly path: string) {
    super(`${path} is a symlink; refusing to write through it`);
    this.name = 'SymlinkRefusedError';
  }
}

/** fsyncs a directory so a rename in it survives power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads /etc/passwd and /etc/group of the running machine once. */
export function systemIds(): IdResolver {
  const table = (file: string): Map<string, number> => {
    const map = new Map<string, number>();
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return map;
    }
    for (const line of text.split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id && /^\d+$/.test(id)) map.set(name, Number(id));
    }
    return map;
  };
  let users: Map<string, number> | undefined;
  let groups: Map<string, number> | undefined;
  return {
    uid: (name) => (users ??= table('/etc/passwd')).get(name),
    gid: (name) => (groups ??= table('/etc/group')).get(name),
  };
}

/** A problem with the host's secrets dir, before any template asks for a value. */
export class SecretsDirError extends Error {
  constructor(
    readonly code: 'SECRETS_DIR_MISSING' | 'SECRET_PERMISSIONS',
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = 'SecretsDirError';
  }
}

/**
 * Reads every secret of a secrets dir (one file per secret, named after it; one trailing newline is dropped).
 * Refuses files that group or others may read: a secret must be 0600 (or 0400).
 */
export async function readSecretsDir(dir: string): Promise<Map<string, string>> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') {
      throw new SecretsDirError('SECRETS_DIR_MISSING', dir, `secrets dir ${dir} does not exist`);
    }
    throw error;
  });
  const secrets = new Map<string, string>();
  for (const entry of entries) {
    if (!entry.isFile() || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    const stat = await lstat(path);
    if ((stat.mode & 0o077) !== 0) {
      throw new SecretsDirError(
        'SECRET_PERMISSIONS',
        path,
        `secret file ${path} has mode ${(stat.mode & 0o777).toString(8)}: make it 0600 and owned by root`,
      );
    }
    secrets.set(entry.name, (await readFile(path, 'utf8')).replace(/\r?\n$/, ''));
  }
  return secrets;
}

/** The outcome of one command on the host. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** True when the command ran past its timeout and was killed. */
  timedOut: boolean;
}

/** Options of one command. */
export interface CommandOptions {
  timeoutMs?: number;
  cwd?: string;
  env?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * Runs commands on the host: systemctl, caddy, ufw, hooks, health probes. The real runner executes them;
 * the recording runner (`--dry-activate`, tests, the benchmark) records them and reports success.
 */
export interface CommandRunner {
  run(argv: readonly string[], options?: CommandOptions): Promise<CommandResult>;
  /** True when commands are only recorded, not run. */
  readonly dryRun: boolean;
}

/** Executes commands for real, without a shell; never throws on a non-zero exit. */
export class ExecRunner implements CommandRunner {
  readonly dryRun = false;

  async run(argv: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty command');
    const { execa } = await import('execa');
    const result = await execa(file, args, {
      reject: false,
      timeout: options.timeoutMs ?? 60_000,
      cwd: options.cwd,
      env: options.env,
      cancelSignal: options.signal,
      stdin: 'ignore',
      all: false,
    });
    return {
      exitCode: result.exitCode ?? (result.failed ? 127 : 0),
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? (result.failed && result.exitCode === undefined ? result.shortMessage : '')),
      timedOut: result.timedOut,
    };
  }
}

/** Records every command instead of running it (`--dry-activate`). */
export class RecordingRunner implements CommandRunner {
  readonly dryRun = true;
  readonly commands: string[][] = [];

  async run(argv: readonly string[]): Promise<CommandResult> {
    this.commands.push([...argv]);
    return { exitCode: 0, stdout: '', stderr: '', timedOut: false };
  }
}
