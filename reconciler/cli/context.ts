/**
 * Building a run's context from command-line options: the host adapter, the runner (real, or recording under
 * `--dry-activate`), secrets, the state store and the logger.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EdgeError } from '../errors.js';
import { ExecRunner, Host, RecordingRunner } from '../host/host.js';
import { DEFAULT_PATH_POLICY } from '../host/path-policy.js';
import type { RunContext } from '../run-context.js';
import { StateStore } from '../state/state-store.js';
import { refuseOtherHost } from '../state/host-binding.js';
import { setupSecrets, type SecretsSetup } from '../secrets/secrets.js';
import { createLogger, parseLogFormat } from './logger.js';

/** The default state dir on a VM. */
export const DEFAULT_STATE_DIR = '/var/lib/edge-reconciler';
/** The default secrets dir on a VM. */
export const DEFAULT_SECRETS_DIR = '/etc/edge-reconciler/secrets';

/** Options every applying command shares. */
export interface ApplyingOptions {
  host: string;
  root: string;
  stateDir: string;
  secretsDir?: string;
  dryActivate?: boolean;
  repo?: string;
  ref?: string;
  deadmanSeconds?: string;
  keep?: string;
  quiet?: boolean;
  /** `--log-format`: json or pretty (default: pretty at a terminal, else json). */
  logFormat?: string;
  /** `--app-instead-of prefix=replacement` (apply). */
  appInsteadOf?: string[];
}

/** The options every command that changes the host shares: where, and whether activation really runs. */
export function withHostOptions(command: Command): Command {
  return command
    .option('--root <dir>', 'filesystem root (anything but / needs --dry-activate)', '/')
    .option('--state-dir <dir>', 'the agent\'s state dir: generations, journal, status', DEFAULT_STATE_DIR)
    .option('--dry-activate', 'record activation commands instead of running them (sandboxes, benchmarks)')
    .option('--quiet', 'log warnings and errors only')
    .option('--log-format <format>', 'json or pretty (default: pretty at a terminal, else json with journald priorities)');
}

/** The logger: see ./logger.ts (kept exported here for the commands that import it from the context). */
export { createLogger } from './logger.js';

/**
 * Refuses a sandbox root (anything but `/`) without `--dry-activate`: the files would go into the sandbox while
 * systemctl, caddy and ufw acted on this machine's own units. `what` names where the root was set.
 */
export function checkSandboxRoot(root: string, dryActivate: boolean | undefined, what = '--root'): void {
  if (resolve(root) !== '/' && !dryActivate) {
    throw new EdgeError('ROOT_NEEDS_DRY_ACTIVATE', `${what} ${root} applies files into a sandbox: add --dry-activate, or systemctl would act on this machine's units`, {
      stage: 'apply',
      retry: 'invalid',
    });
  }
}

/**
 * A whole-number option (`--keep 10`, `--wait 600`, `--to 3`): refused with USAGE, naming the option, when it is
 * anything else (`Number('abc')` would be NaN and silently mean "no limit" or "no generation").
 */
export function wholeNumber(option: string, value: string | undefined, fallback: number, minimum = 0): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value.trim()) || Number(value) < minimum) {
    throw new EdgeError('USAGE', `${option} must be a whole number of at least ${minimum}, not ${JSON.stringify(value)}`, { stage: 'fetch', retry: 'invalid' });
  }
  return Number(value);
}

/** The context of an applying command. `--root` other than `/` needs `--dry-activate`: the units would not match. */
export async function applyingContext(options: ApplyingOptions): Promise<RunContext> {
  checkSandboxRoot(options.root, options.dryActivate);
  const deadmanSeconds = wholeNumber('--deadman-seconds', options.deadmanSeconds, 120, 1);
  const keepGenerations = wholeNumber('--keep', options.keep, 10, 1);
  const store = new StateStore(options.stateDir);
  await refuseOtherHost(store, options.host);
  const secrets = await applyingSecrets(options);
  return {
    hostName: options.host,
    host: new Host(options.root),
    secrets: secrets.source,
    redact: secrets.redact,
    policy: DEFAULT_PATH_POLICY,
    log: createLogger(secrets.redact, { quiet: options.quiet, format: parseLogFormat(options.logFormat), host: options.host }),
    store,
    cacheDir: join(options.stateDir, 'cache'),
    runner: options.dryActivate ? new RecordingRunner() : new ExecRunner(),
    ...(options.repo ? { source: { repo: options.repo, ref: options.ref } } : {}),
    deadmanSeconds,
    keepGenerations,
    ...(options.appInsteadOf && options.appInsteadOf.length > 0 ? { apps: { insteadOf: insteadOfOption(options.appInsteadOf), auth: [] } } : {}),
  };
}

/**
 * The secrets of a command that changes the host: `--secrets-dir`, else on a real host (`--root /`) the standard
 * dir when it is there. Never placeholders: without a secrets dir, a template that asks for a secret fails to
 * render (SECRET_MISSING, naming the secret), so no env file is ever written with a stand-in value.
 */
async function applyingSecrets(options: ApplyingOptions): Promise<SecretsSetup> {
  const dir = options.secretsDir ?? (options.root === '/' && existsSync(DEFAULT_SECRETS_DIR) ? DEFAULT_SECRETS_DIR : undefined);
  if (dir) return setupSecrets(dir);
  const description = `any secrets dir: none was given (--secrets-dir${options.root === '/' ? `; ${DEFAULT_SECRETS_DIR} does not exist` : ''})`;
  return { source: { get: () => undefined, description }, redact: (text) => text };
}

/** `--app-instead-of prefix=replacement`, repeated, as the host config's apps.insteadOf. */
export function insteadOfOption(values: readonly string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const value of values) {
    const at = value.indexOf('=');
    if (at <= 0 || at === value.length - 1) {
      throw new EdgeError('USAGE', `--app-instead-of wants prefix=replacement, not ${JSON.stringify(value)}`, { stage: 'fetch', retry: 'invalid' });
    }
    map[value.slice(0, at)] = value.slice(at + 1);
  }
  return map;
}
