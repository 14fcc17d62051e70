/** A command runner for in-process tests: systemctl is recorded, everything else (health commands) runs for real. */
import { ExecRunner, type CommandOptions, type CommandResult, type CommandRunner } from '../../reconciler/host.js';

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

