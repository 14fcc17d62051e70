/**
 * The host adapter: the only module that touches the live machine. Every host path is resolved under a
 * configurable root (`/` on a VM, a sandbox dir in tests and the quick start), and never through a symlink.
 */
import { readFileSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

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
