/**
 * `edge-reconciler secrets list|set`: which host-local secrets this host's desired state uses and which are
 * missing (names only, never values), and writing one from stdin, 0600, atomically. Values never reach argv.
 */
import type { Command } from 'commander';
import { lstat, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_CONFIG_PATH, loadHostConfig } from '../config/host-config.js';
import { EdgeError } from '../errors.js';
import { syncDir } from '../host/host.js';
import { notPrivate } from '../host/secrets-dir.js';
import { writeFileAtomic } from '../state/state-store.js';
import { SECRET_NAME } from '../../renderers/template.js';
import { neededSecrets, previewHost, type NeededSecret } from './host-preview.js';
import { out, printError } from './io.js';

/** Whether a needed secret is in place, and if not, why (`not private: ...` says how the reader would refuse it). */
export type SecretState = 'present' | 'missing' | 'empty' | 'not a regular file' | `not private: ${string}`;

/** A needed secret with its state on this host. */
export interface SecretReport extends NeededSecret {
  state: SecretState;
}

const plain = (text: string) => text;

/** Registers `secrets list` and `secrets set`. */
export function registerSecrets(program: Command): void {
  const secrets = program.command('secrets').description('the host-local secrets this host needs: list them, set one');
  secrets
    .command('list')
    .description('the secrets this host\'s desired state uses, and which are missing (names only, never values)')
    .option('--config <path>', 'the host config', DEFAULT_CONFIG_PATH)
    .option('--repo <dir>', 'read the desired state from this checkout instead of fetching the configured repo')
    .option('--json', 'print JSON')
    .action(async (options: { config: string; repo?: string; json?: boolean }) => {
      try {
        const config = await loadHostConfig(options.config);
        const preview = await previewHost(config, options.repo);
        const reports = await secretReports(config.secretsDir, neededSecrets(preview.files));
        const missing = reports.filter((report) => report.state !== 'present');
        if (options.json) {
          out(JSON.stringify({ host: config.host, revision: preview.revision, secretsDir: config.secretsDir, secrets: reports }, null, 2), plain);
        } else {
          out(formatReports(config.host, preview.revision, config.secretsDir, reports), plain);
        }
        process.exitCode = missing.length === 0 ? 0 : 1;
      } catch (error) {
        process.exitCode = printError(error);
      }
    });
  secrets
    .command('set <name>')
    .description('write one secret from stdin into the secrets dir (mode 0600, atomically); one trailing newline is dropped')
    .option('--config <path>', 'the host config (for its secrets dir)', DEFAULT_CONFIG_PATH)
    .option('--secrets-dir <dir>', 'the secrets dir (default: the host config\'s)')
    .action(async (name: string, options: { config: string; secretsDir?: string }) => {
      try {
        process.exitCode = await setSecret(name, options.secretsDir ?? (await loadHostConfig(options.config)).secretsDir);
      } catch (error) {
        process.exitCode = printError(error);
      }
    });
}

/** The state of each needed secret in `dir`. */
export async function secretReports(dir: string, needed: readonly NeededSecret[]): Promise<SecretReport[]> {
  return Promise.all(needed.map(async (secret) => ({ ...secret, state: await secretState(join(dir, secret.name)) })));
}

async function secretState(path: string): Promise<SecretState> {
  const stat = await lstat(path).catch(() => undefined);
  if (!stat) return 'missing';
  if (!stat.isFile()) return 'not a regular file';
  const problem = notPrivate(stat, 'secret file', path, '0600');
  if (problem) return `not private: ${problem}`;
  return stat.size === 0 ? 'empty' : 'present';
}

/** The report as a table an operator reads. */
export function formatReports(host: string, revision: string, dir: string, reports: readonly SecretReport[]): string {
  if (reports.length === 0) return `host ${host} uses no secrets at ${revision.slice(0, 12)}`;
  const width = Math.max(...reports.map((report) => report.name.length));
  const missing = reports.filter((report) => report.state !== 'present').length;
  const lines = [`host ${host} uses ${reports.length} secret(s) at ${revision.slice(0, 12)}, from ${dir}:`];
  for (const report of reports) lines.push(`  ${report.name.padEnd(width)}  ${report.state.padEnd(9)}  used by ${report.usedBy.join(', ')}`);
  lines.push(missing === 0 ? 'all present' : `${missing} to set: edge-reconciler secrets set NAME < file-with-the-value`);
  return lines.join('\n');
}

async function setSecret(name: string, dir: string): Promise<number> {
  if (!SECRET_NAME.test(name)) {
    throw new EdgeError('SECRET_NAME_INVALID', `"${name}" is not a secret name (letters, digits, _ . -; not starting with a digit, . or -)`, {
      stage: 'render',
      retry: 'invalid',
    });
  }
  if (process.stdin.isTTY) {
    process.stderr.write(`error: pipe the value on stdin, so it stays out of your shell history: edge-reconciler secrets set ${name} < file\n`);
    return 2;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  let value = Buffer.concat(chunks);
  if (value.at(-1) === 0x0a) value = value.subarray(0, value.length - 1);
  if (value.length === 0) {
    process.stderr.write(`error: no value on stdin for ${name}: nothing written\n`);
    return 1;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Written as a dotfile first: the agent's secrets watcher ignores dotfiles, so it sees one change, whole.
  const staged = join(dir, `.${name}.new`);
  await writeFileAtomic(staged, value, 0o600);
  await rename(staged, join(dir, name));
  await syncDir(dir);
  out(`wrote ${join(dir, name)} (mode 0600, ${value.length} bytes); a running agent re-renders what uses it`, plain);
  return 0;
}
