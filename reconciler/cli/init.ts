/**
 * `edge-reconciler init`: writes the commented default host config (mode 0600) and creates the secrets dir (0700),
 * then says what to do next. Refuses to overwrite an existing config without `--force`.
 */
import type { Command } from 'commander';
import { access, mkdir, stat } from 'node:fs/promises';
import { DEFAULT_CONFIG_PATH, parseHostConfig, renderDefaultConfig } from '../config/host-config.js';
import { writeFileAtomic } from '../state/state-store.js';
import { out, printError } from './io.js';

interface InitOptions {
  config: string;
  repo?: string;
  host?: string;
  stateDir?: string;
  secretsDir?: string;
  force?: boolean;
}

const plain = (text: string) => text;

/** Registers the `init` command. */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description('write a commented default host config and create the secrets dir')
    .option('--config <path>', 'where to write the host config', DEFAULT_CONFIG_PATH)
    .option('--repo <url>', 'the desired-state repo (default: a placeholder to edit)')
    .option('--host <name>', 'this host\'s name in the repo (default: from the machine\'s hostname)')
    .option('--state-dir <dir>', 'the agent\'s state dir to put in the config')
    .option('--secrets-dir <dir>', 'the secrets dir to put in the config (created 0700 if missing)')
    .option('--force', 'overwrite an existing config')
    .action(async (options: InitOptions) => {
      try {
        process.exitCode = await runInit(options);
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
  const text = renderDefaultConfig({ repo: options.repo, host: options.host, stateDir: options.stateDir, secretsDir: options.secretsDir });
  // The default must load; this catches a bad --host or --repo before anything is written.
  const config = await parseHostConfig(options.config, text);
  await writeFileAtomic(options.config, text, 0o600);
  const lines = [`wrote ${options.config} (mode 0600) for host ${config.host}`];

  const secrets = await stat(config.secretsDir).catch(() => undefined);
  if (!secrets) {
    await mkdir(config.secretsDir, { recursive: true, mode: 0o700 });
    lines.push(`created the secrets dir ${config.secretsDir} (mode 0700)`);
  } else if ((secrets.mode & 0o077) !== 0) {
    lines.push(`warning: the secrets dir ${config.secretsDir} has mode ${(secrets.mode & 0o777).toString(8).padStart(4, '0')}: chmod 0700 it`);
  }

  lines.push(
    'next steps:',
    `  1. edit ${options.config}: ${options.repo ? 'check' : 'set'} repo, and ref (a branch) or tagPattern (tags); every key is commented`,
    `  2. put this host's secrets into ${config.secretsDir}, one file per secret, mode 0600`,
    `  3. for push webhooks: write a random secret to a 0600 file, set webhook.secretFile and webhook.enabled: true`,
    `  4. start the agent (edge-reconciler serve, through its systemd unit) and watch edge-reconciler status`,
  );
  out(lines.join('\n'), plain);
  return 0;
}
