/**
 * The host's secrets dir: one file per secret, named after it, readable by the agent alone. Read once per run
 * (and again when the watcher sees a change); the values only ever reach env-file templates and the redactor.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MANY, preferShortRuns } from './short-runs.js';

/** A problem with the host's secrets dir, before any template asks for a value. */
export class SecretsDirError extends Error {
  constructor(
    readonly code: 'SECRETS_DIR_MISSING' | 'SECRETS_DIR_PERMISSIONS' | 'SECRET_PERMISSIONS',
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = 'SecretsDirError';
  }
}

/**
 * Reads every secret of a secrets dir (one file per secret, named after it; one trailing newline is dropped).
 * The dir and every secret must belong to the user the agent runs as (root on a VM) and be closed to group and
 * others: the dir 0700, a secret 0600 (or 0400). Anything else is refused, naming the file, before a value is read.
 */
export async function readSecretsDir(dir: string): Promise<Map<string, string>> {
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') {
      throw new SecretsDirError('SECRETS_DIR_MISSING', dir, `secrets dir ${dir} does not exist`);
    }
    throw error;
  });
  if (!info.isDirectory()) throw new SecretsDirError('SECRETS_DIR_MISSING', dir, `secrets dir ${dir} is not a directory`);
  const refusal = notPrivate(info, 'secrets dir', dir, '0700');
  if (refusal) throw new SecretsDirError('SECRETS_DIR_PERMISSIONS', dir, refusal);
  const secrets = new Map<string, string>();
  const self = process.geteuid?.();
  const files = (await readdir(dir, { withFileTypes: true })).filter((entry) => entry.isFile() && !entry.name.startsWith('.'));
  if (files.length >= MANY) preferShortRuns();
  for (const entry of files) {
    const path = join(dir, entry.name);
    // Checked on the open descriptor: what is judged is what is read. Synchronous: small local files, read at
    // every run; four thread-pool trips per secret cost more than the reads themselves.
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const problem = notPrivate(fstatSync(fd), 'secret file', path, '0600', self);
      if (problem) throw new SecretsDirError('SECRET_PERMISSIONS', path, problem);
      secrets.set(entry.name, readFileSync(fd, 'utf8').replace(/\r?\n$/, ''));
    } finally {
      closeSync(fd);
    }
  }
  return secrets;
}

/**
 * Why `info` is not private to the agent's own user (owned by it, closed to group and others), or undefined when
 * it is: the one rule for the secrets dir (`mode` 0700) and each secret (0600), wherever they are judged. `self`
 * is the agent's effective uid (asked once by a caller judging many files).
 */
export function notPrivate(info: Stats, what: string, path: string, mode: string, self = process.geteuid?.()): string | undefined {
  const fix = () => `make it ${mode} and owned by ${self === 0 || self === undefined ? 'root' : `uid ${self}`} (the agent's user)`;
  if (self !== undefined && info.uid !== self) return `${what} ${path} is owned by uid ${info.uid}: ${fix()}`;
  if ((info.mode & 0o077) !== 0) return `${what} ${path} has mode ${(info.mode & 0o777).toString(8)}: ${fix()}`;
  return undefined;
}
