/**
 * `edge-reconciler suspend --reason TEXT` and `resume`: stop the agent from changing this host, and let it again.
 * They must work in an emergency, so the state dir comes from `--state-dir`, else from the config file even when
 * that file is otherwise broken, else the default.
 */
import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { configuredStateDir, DEFAULT_CONFIG_PATH } from '../config/host-config.js';
import { resumeHost, suspendHost } from '../state/suspend.js';
import { DEFAULT_STATE_DIR } from './context.js';
import { out, printError } from './io.js';

interface StateDirOptions {
  stateDir?: string;
  config: string;
}

const plain = (text: string) => text;

/** The state dir: `--state-dir`, else the config's `stateDir`, else the default. */
async function resolveStateDir(options: StateDirOptions): Promise<string> {
  return options.stateDir ?? (await configuredStateDir(options.config)) ?? DEFAULT_STATE_DIR;
}

/** Who ran the command: the sudo user behind root when there is one. */
function operator(): string | undefined {
  if (process.env.SUDO_USER) return process.env.SUDO_USER;
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

/** Registers `suspend` and `resume`. */
export function registerSuspend(program: Command): void {
  program
    .command('suspend')
    .description('stop applying changes to this host (commits, drift healing, secret rotation) until resume')
    .requiredOption('--reason <text>', 'why: shown in status and logs')
    .option('--by <name>', 'who suspends (default: the sudo user, or the current user)')
    .option('--state-dir <dir>', 'the agent\'s state dir (default: stateDir of the config, or /var/lib/edge-reconciler)')
    .option('--config <path>', 'the host config to read the state dir from', DEFAULT_CONFIG_PATH)
    .action(async (options: StateDirOptions & { reason: string; by?: string }) => {
      try {
        const stateDir = await resolveStateDir(options);
        const suspension = await suspendHost(stateDir, options.reason, options.by ?? operator());
        out(`suspended (${stateDir}) since ${suspension.at}${suspension.by ? ` by ${suspension.by}` : ''}: ${suspension.reason}\nrun edge-reconciler resume to let the agent apply again`, plain);
      } catch (error) {
        process.exitCode = printError(error);
      }
    });

  program
    .command('resume')
    .description('lift a suspension: the agent applies again at its next trigger')
    .option('--state-dir <dir>', 'the agent\'s state dir (default: stateDir of the config, or /var/lib/edge-reconciler)')
    .option('--config <path>', 'the host config to read the state dir from', DEFAULT_CONFIG_PATH)
    .action(async (options: StateDirOptions) => {
      try {
        const stateDir = await resolveStateDir(options);
        const lifted = await resumeHost(stateDir);
        out(lifted ? `resumed (${stateDir}); was suspended since ${lifted.at}${lifted.by ? ` by ${lifted.by}` : ''}: ${lifted.reason}` : `not suspended (${stateDir})`, plain);
      } catch (error) {
        process.exitCode = printError(error);
      }
    });
}
