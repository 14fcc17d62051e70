/**
 * The files and dirs the host config names, checked when it loads: credentials (the deploy key, the token, the
 * webhook secret) must be regular files private to the agent's user; trust roots (known_hosts, allowed_signers,
 * the gpg keyring) and the secrets dir must not be writable by anyone else, so nobody but the agent's user (or
 * root) can plant a key or read a secret. A secret's content never appears in a problem.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Problem } from '../errors.js';
import type { YamlSource } from './yaml-source.js';

/** What a configured path must be. */
type PathKind = 'private file' | 'trusted file' | 'trusted dir' | 'secrets dir';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function section(value: Record<string, unknown>, key: string): Record<string, unknown> {
  const inner = value[key];
  return isRecord(inner) ? inner : {};
}

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

/** The owners a configured file may have: the agent's own user, or root. */
function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === (process.getuid?.() ?? 0);
}

/** Each secret in the secrets dir must be private to the agent's user (or root), as the renderer will insist. */
async function secretFileProblems(dir: string, report: (message: string) => void): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile() || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    const stat = await lstat(path).catch(() => undefined);
    if (!stat) continue;
    if (!trustedOwner(stat.uid)) report(`secret file ${path} in "secretsDir" is owned by uid ${stat.uid}: it must belong to the agent's user or root`);
    else if ((stat.mode & 0o077) !== 0) report(`secret file ${path} in "secretsDir" has mode ${octal(stat.mode)}: make it 0600`);
  }
}

/** Checks the files the config names, adding to `problems`; returns the webhook secret when the webhook is enabled. */
export async function fileProblems(source: YamlSource, value: Record<string, unknown>, problems: Problem[]): Promise<string | undefined> {
  const at = (pointer: string, message: string) => {
    problems.push({ code: 'CONFIG_INVALID', file: source.file, line: source.lineOf(pointer), path: pointer, message });
  };
  const check = async (pointer: string, path: unknown, kind: PathKind): Promise<boolean> => {
    if (typeof path !== 'string') return false;
    const key = pointer.slice(1).replace(/\//g, '.');
    const stat = await lstat(path).catch(() => undefined);
    if (!stat) {
      // The secrets dir may come later (a host with no secret yet); a missing secret is named when it is used.
      if (kind !== 'secrets dir') at(pointer, `"${key}" ${path} does not exist`);
      return false;
    }
    const dir = kind === 'trusted dir' || kind === 'secrets dir';
    if (dir ? !stat.isDirectory() : !stat.isFile()) {
      at(pointer, `"${key}" ${path} is not a ${dir ? 'directory' : 'regular file'}`);
      return false;
    }
    if (!trustedOwner(stat.uid)) {
      at(pointer, `"${key}" ${path} is owned by uid ${stat.uid}: it must belong to the agent's user or root`);
      return false;
    }
    if (kind === 'private file' && (stat.mode & 0o077) !== 0) {
      at(pointer, `"${key}" ${path} has mode ${octal(stat.mode)}: make it 0600 (readable by its owner only)`);
      return false;
    }
    if (kind === 'secrets dir' && (stat.mode & 0o077) !== 0) {
      at(pointer, `"${key}" ${path} has mode ${octal(stat.mode)}: make it 0700 (open to its owner only)`);
      return false;
    }
    if ((kind === 'trusted file' || kind === 'trusted dir') && (stat.mode & 0o022) !== 0) {
      at(pointer, `"${key}" ${path} has mode ${octal(stat.mode)}: anyone who can write it decides what is trusted; make it writable by its owner only`);
      return false;
    }
    return true;
  };

  const auth = section(value, 'auth');
  await check('/auth/sshKeyFile', auth.sshKeyFile, 'private file');
  await check('/auth/knownHostsFile', auth.knownHostsFile, 'trusted file');
  await check('/auth/tokenFile', auth.tokenFile, 'private file');
  const forge = section(value, 'forge');
  await check('/forge/tokenFile', forge.tokenFile, 'private file');
  const trust = section(value, 'trust');
  await check('/trust/allowedSignersFile', trust.allowedSignersFile, 'trusted file');
  await check('/trust/gpgHome', trust.gpgHome, 'trusted dir');
  if (await check('/secretsDir', value.secretsDir, 'secrets dir')) await secretFileProblems(value.secretsDir as string, (message) => at('/secretsDir', message));

  const webhook = section(value, 'webhook');
  if (webhook.enabled !== true || !(await check('/webhook/secretFile', webhook.secretFile, 'private file'))) return undefined;
  const secret = await readFile(webhook.secretFile as string, 'utf8').then(
    (text) => text.trim(),
    (error: NodeJS.ErrnoException) => {
      at('/webhook/secretFile', `cannot read "webhook.secretFile" ${String(webhook.secretFile)}: ${error.code ?? 'error'}`);
      return undefined;
    },
  );
  if (secret === undefined) return undefined;
  if (secret === '') at('/webhook/secretFile', `"webhook.secretFile" ${String(webhook.secretFile)} is empty`);
  return secret === '' ? undefined : secret;
}
