/**
 * The host's secrets dir: one file per secret, named after it, readable by the agent alone. Read once per run
 * (and again when the watcher sees a change); the values only ever reach env-file templates and the redactor.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

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

