/**
 * How the host adapter runs commands (systemctl, caddy, ufw, useradd, systemd-run, health probes): the real runner
 * executes them without a shell; the recording runner (`--dry-activate`, tests, the benchmark) only records them.
 */
/** The outcome of one command on the host. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** True when the command ran past its timeout and was killed. */
  timedOut: boolean;
}

/** Options of one command. */
export interface CommandOptions {
  timeoutMs?: number;
  cwd?: string;
  env?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * Runs commands on the host: systemctl, caddy, ufw, hooks, health probes. The real runner executes them;
 * the recording runner (`--dry-activate`, tests, the benchmark) records them and reports success.
 */
export interface CommandRunner {
  run(argv: readonly string[], options?: CommandOptions): Promise<CommandResult>;
  /** True when commands are only recorded, not run. */
  readonly dryRun: boolean;
}

/** Executes commands for real, without a shell; never throws on a non-zero exit. */
export class ExecRunner implements CommandRunner {
  readonly dryRun = false;

  async run(argv: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty command');
    const { execa } = await import('execa');
    const result = await execa(file, args, {
      reject: false,
      timeout: options.timeoutMs ?? 60_000,
      cwd: options.cwd,
      env: options.env,
      cancelSignal: options.signal,
      stdin: 'ignore',
      all: false,
    });
    return {
      exitCode: result.exitCode ?? (result.failed ? 127 : 0),
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? (result.failed && result.exitCode === undefined ? result.shortMessage : '')),
      timedOut: result.timedOut,
    };
  }
}

/** Records every command instead of running it (`--dry-activate`). */
export class RecordingRunner implements CommandRunner {
  readonly dryRun = true;
  readonly commands: string[][] = [];

  async run(argv: readonly string[]): Promise<CommandResult> {
    this.commands.push([...argv]);
    return { exitCode: 0, stdout: '', stderr: '', timedOut: false };
  }
}
