/** A command runner for in-process tests: systemctl is recorded, everything else (health commands) runs for real. */
import { ExecRunner, Host, type CommandOptions, type CommandResult, type CommandRunner } from '../../reconciler/host/host.js';
import { DEFAULT_PATH_POLICY } from '../../reconciler/host/path-policy.js';
import { silentLogger, type RunContext } from '../../reconciler/run-context.js';
import type { StateStore } from '../../reconciler/state/state-store.js';
import { placeholderSecrets } from '../../renderers/template.js';
import { TINY_HOST } from './tiny-repo.js';

/** Records systemctl (answering `show` as an active unit); runs everything else for real. */
export class SystemctlShim implements CommandRunner {
  readonly dryRun = false;
  readonly systemctl: string[] = [];
  private readonly real = new ExecRunner();

  async run(argv: readonly string[], options?: CommandOptions): Promise<CommandResult> {
    if (argv[0] !== 'systemctl') return this.real.run(argv, options);
    this.systemctl.push(argv.slice(1).join(' '));
    const stdout = argv[1] === 'show' ? 'LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nType=simple\n' : '';
    return { exitCode: 0, stdout, stderr: '', timedOut: false };
  }
}


/** The run context of an in-process reconcile of the tiny repo's host into `root`, systemctl recorded. */
export function shimContext(options: { root: string; store: StateStore; repo: string; runner?: SystemctlShim }): RunContext {
  return {
    hostName: TINY_HOST,
    host: new Host(options.root),
    secrets: placeholderSecrets,
    redact: (text) => text,
    policy: DEFAULT_PATH_POLICY,
    log: silentLogger,
    store: options.store,
    runner: options.runner ?? new SystemctlShim(),
    source: { repo: options.repo },
  };
}
