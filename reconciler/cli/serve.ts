/**
 * `edge-reconciler serve` runs the agent (webhooks, polling, drift and secrets watching, one reconcile worker);
 * `edge-reconciler reconcile [--now]` asks the running agent for a reconcile, or runs one itself when no agent
 * listens.
 */
import type { Command } from 'commander';
import { contextFromConfig, runMode, startAgent } from '../agent/agent.js';
import { setupFleet } from '../agent/fleet.js';
import { EdgeError } from '../errors.js';
import { confinement } from '../host/sandbox.js';
import { DEFAULT_CONFIG_PATH, loadHostConfig, parseListen, type HostConfig } from '../config/host-config.js';
import { isWildcard } from '../config/listen-address.js';
import { reconcile } from '../reconcile.js';
import type { Redactor } from '../secrets/redact.js';
import { describeRepo, scrub } from '../source/git-errors.js';
import { checkSandboxRoot, createLogger } from './context.js';
import { out, printError } from './io.js';
import { readReconcileToken } from './reconcile-token.js';


/** Registers `serve` and `reconcile`. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the agent: webhooks, polling, drift and secrets watching, one reconcile at a time')
    .option('--config <path>', 'the host config', DEFAULT_CONFIG_PATH)
    .option('--dry-activate', 'record activation instead of running it (a sandbox root; demos and tests)')
    .option('--reconcile-token-file <path>', 'require this token (file mode 0600) on POST /reconcile, besides a loopback peer')
    .action(async (options: { config: string; dryActivate?: boolean; reconcileTokenFile?: string }) => {
      let redact: Redactor = (text) => text;
      const log = createLogger((text) => redact(text));
      let config: HostConfig;
      let reconcileToken: string | undefined;
      try {
        config = await loadHostConfig(options.config);
        checkSandboxRoot(config.root, options.dryActivate, `"root" of ${options.config}:`);
        if (options.reconcileTokenFile) reconcileToken = await readReconcileToken(options.reconcileTokenFile);
      } catch (error) {
        process.exitCode = printError(error, (text) => scrub(text, []));
        return;
      }
      const agent = await startAgent(config, {
        log,
        dryActivate: options.dryActivate,
        setRedactor: (next) => (redact = next),
        ...(reconcileToken !== undefined ? { reconcileToken } : {}),
      });
      log.info({ url: agent.daemon.url, host: config.host, repo: describeRepo(config.repo) }, `edge-reconciler serving ${config.host} on ${agent.daemon.url}`);
      // Said once at start, off the start's path: whether the repo's validate commands run in the sandbox here.
      void confinement().then((sandbox) =>
        sandbox.confined
          ? log.info({ confinement: sandbox.mode }, `repo-supplied commands run confined (${sandbox.mode})`)
          : log.warn({ confinement: 'none' }, `repo-supplied commands run unconfined: ${sandbox.reason ?? 'unknown reason'}`),
      );
      await agent.closed;
      log.info({}, 'edge-reconciler stopped');
    });

  program
    .command('reconcile')
    .description('ask the running agent for a reconcile now (or run one here when no agent listens)')
    .option('--config <path>', 'the host config', DEFAULT_CONFIG_PATH)
    .option('--now', 'override the maintenance windows (never a suspension)')
    .option('--ignore-waves', 'with --now: apply without waiting for the earlier waves of edge.yaml')
    .option('--dry-activate', 'when no agent listens: record activation instead of running it (a sandbox root)')
    .option('--reconcile-token-file <path>', 'send this token to the agent (when serve requires one)')
    .action(async (options: { config: string; now?: boolean; ignoreWaves?: boolean; dryActivate?: boolean; reconcileTokenFile?: string }) => {
      try {
        if (options.ignoreWaves && !options.now) throw new EdgeError('USAGE', '--ignore-waves goes with --now: reconcile --now --ignore-waves', { stage: 'fetch', retry: 'invalid' });
        const config = await loadHostConfig(options.config);
        const token = options.reconcileTokenFile ? await readReconcileToken(options.reconcileTokenFile) : undefined;
        const listen = parseListen(config.listen);
        const host = !listen || isWildcard(listen.host) ? '127.0.0.1' : listen.host;
        const url = `http://${host.includes(':') ? `[${host}]` : host}:${listen?.port ?? 9321}/reconcile`;
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify({ now: options.now === true, ...(options.ignoreWaves ? { ignoreWaves: true } : {}) }),
          signal: AbortSignal.timeout(5_000),
        }).catch(() => undefined);
        if (response) {
          out(`asked the agent at ${url}: ${response.status} ${await response.text()}`, (text) => text);
          process.exitCode = response.ok ? 0 : 1;
          return;
        }
        checkSandboxRoot(config.root, options.dryActivate, `"root" of ${options.config}:`);
        let redact: Redactor = (text) => text;
        const log = createLogger((text) => redact(text), true);
        // The waves hold here too (the forge's statuses are read; only the agent posts them).
        const { gate } = await setupFleet(config, { log, redact: () => redact });
        const ctx = await contextFromConfig(config, { log, dryActivate: options.dryActivate, setRedactor: (next) => (redact = next) }, undefined, gate ? { gate } : {});
        const outcome = await reconcile(ctx, { mode: runMode(config, ['manual']), force: options.now === true, ignoreWaves: options.ignoreWaves === true, lockWaitMs: 600_000 });
        out(`no agent listens at ${url}; reconciled here: ${outcome.result} ${outcome.revision?.slice(0, 12) ?? ''}`, redact);
        if (outcome.error) printError(outcome.error, redact);
        // Held by a wave is on purpose, like a suspension: not a failure.
        process.exitCode = ['applied', 'unchanged', 'waiting', 'halted'].includes(outcome.result) ? 0 : 1;
      } catch (error) {
        process.exitCode = printError(error);
      }
    });
}
