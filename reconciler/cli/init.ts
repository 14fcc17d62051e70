/**
 * `edge-reconciler init`: writes the commented default host config (mode 0600) and creates the secrets dir (0700),
 * then says what to do next. Refuses to overwrite an existing config without `--force`; `--check` only compares
 * an existing config with the flags (bootstrap.sh runs it on a second run).
 */
import type { Command } from 'commander';
import { access, mkdir, readFile, stat } from 'node:fs/promises';
import { DEFAULT_CONFIG_PATH, parseHostConfig, renderDefaultConfig, type HostConfig } from '../config/host-config.js';
import { writeFileAtomic } from '../state/state-store.js';
import { out, printError } from './io.js';

interface InitOptions {
  config: string;
  repo?: string;
  ref?: string;
  tagPattern?: string;
  path?: string;
  host?: string;
  stateDir?: string;
  secretsDir?: string;
  webhookSecretFile?: string;
  force?: boolean;
  check?: boolean;
  quiet?: boolean;
}

const plain = (text: string) => text;

/** Registers the `init` command. */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description('write a commented default host config and create the secrets dir')
    .option('--config <path>', 'where to write the host config', DEFAULT_CONFIG_PATH)
    .option('--repo <url>', 'the desired-state repo (default: a placeholder to edit)')
    .option('--ref <branch>', 'the branch to follow (default: release)')
    .option('--tag-pattern <glob>', 'follow the newest tag matching this glob (e.g. "prod-*") instead of a branch')
    .option('--path <dir>', 'the folder of the repo that holds the desired state (default: its root)')
    .option('--host <name>', 'this host\'s name in the repo (default: the machine\'s hostname, said aloud)')
    .option('--state-dir <dir>', 'the agent\'s state dir to put in the config')
    .option('--secrets-dir <dir>', 'the secrets dir to put in the config (created 0700 if missing)')
    .option('--webhook-secret-file <file>', 'enable push webhooks, checked with the secret in this file (0600)')
    .option('--force', 'overwrite an existing config')
    .option('--check', 'write nothing: exit 0 when the existing config has these repo, ref/tag pattern and host, 1 otherwise')
    .option('--quiet', 'print only problems')
    .action(async (options: InitOptions) => {
      try {
        if (options.ref !== undefined && options.tagPattern !== undefined) {
          process.stderr.write('error: --ref and --tag-pattern exclude each other: follow a branch or tags\n');
          process.exitCode = 2;
          return;
        }
        process.exitCode = options.check ? await checkInit(options) : await runInit(options);
      } catch (error) {
        process.exitCode = printError(error);
      }
    });
}

async function runInit(options: InitOptions): Promise<number> {
  const exists = await access(options.config).then(() => true, () => false);
  if (exists && !options.force) {
    process.stderr.write(`error: host config ${options.config} already exists: edit it, or pass --force to overwrite it\n`);
    return 1;
  }
  const text = renderDefaultConfig(options);
  // The default must load; this catches a bad --host, --repo, --ref or --tag-pattern before anything is written.
  const config = await parseHostConfig(options.config, text);
  await writeFileAtomic(options.config, text, 0o600);
  const lines = [`wrote ${options.config} (mode 0600) for host ${config.host}, following ${followed(config)}`];
  if (options.host === undefined) lines.push(`the host name ${config.host} comes from this machine's hostname: pass --host to name it`);

  const secrets = await stat(config.secretsDir).catch(() => undefined);
  if (!secrets) {
    await mkdir(config.secretsDir, { recursive: true, mode: 0o700 });
    lines.push(`created the secrets dir ${config.secretsDir} (mode 0700)`);
  } else if ((secrets.mode & 0o077) !== 0) {
    lines.push(`warning: the secrets dir ${config.secretsDir} has mode ${(secrets.mode & 0o777).toString(8).padStart(4, '0')}: chmod 0700 it`);
  }
  if (options.quiet) return 0;

  lines.push(
    'next steps:',
    `  1. review ${options.config}: ${options.repo ? 'repo and' : 'set repo, and check'} ref (a branch) or tagPattern (tags); every key is commented`,
    '  2. edge-reconciler secrets list: the secrets this host needs; edge-reconciler secrets set NAME < file for each',
    options.webhookSecretFile
      ? `  3. give the forge's webhook (push events, JSON) the secret in ${options.webhookSecretFile}`
      : '  3. for push webhooks: write a random secret to a 0600 file, set webhook.secretFile and webhook.enabled: true',
    '  4. edge-reconciler doctor, then systemctl enable --now edge-reconciler.service; watch edge-reconciler status',
  );
  out(lines.join('\n'), plain);
  return 0;
}

/** Compares an existing config with the flags, key by key; names each difference. */
async function checkInit(options: InitOptions): Promise<number> {
  const config = await parseHostConfig(options.config, await readFile(options.config, 'utf8'));
  const differences: string[] = [];
  const compare = (key: string, wanted: string | undefined, actual: string | undefined) => {
    if (wanted !== undefined && wanted !== actual) differences.push(`${key} is ${actual ?? '(unset)'}, not ${wanted}`);
  };
  compare('repo', options.repo, config.repo);
  compare('host', options.host, config.host);
  compare('tagPattern', options.tagPattern, config.tagPattern);
  compare('path', options.path, config.path);
  if (options.ref !== undefined) compare('ref', options.ref, config.tagPattern !== undefined ? undefined : config.ref);
  for (const difference of differences) process.stderr.write(`${options.config}: ${difference}\n`);
  return differences.length === 0 ? 0 : 1;
}

function followed(config: HostConfig): string {
  return config.tagPattern !== undefined ? `the newest tag matching ${config.tagPattern}` : `the branch ${config.ref}`;
}
