#!/usr/bin/env node
/**
 * The `edge-reconciler` command line. Only the module of the command being run is loaded (a `status` from a timer
 * or a hook should not pay for the agent, the validators and the git source); `--help` and unknown commands load
 * them all, so the help lists every command.
 */
import { Command } from 'commander';
import { EdgeError } from '../errors.js';
import { printError } from './io.js';
import { ENGINE_VERSION } from '../version.js';

type Register = (program: Command) => void;

const apply = async (): Promise<Register> => (await import('./apply.js')).registerApply;
const check = async (): Promise<Register> => (await import('./check.js')).registerCheck;
const doctor = async (): Promise<Register> => (await import('./doctor.js')).registerDoctor;
const init = async (): Promise<Register> => (await import('./init.js')).registerInit;
const plan = async (): Promise<Register> => (await import('./plan.js')).registerPlan;
const schemas = async (): Promise<Register> => (await import('./schemas.js')).registerSchemas;
const secrets = async (): Promise<Register> => (await import('./secrets.js')).registerSecrets;
const serve = async (): Promise<Register> => (await import('./serve.js')).registerServe;
const stateCommands = async (): Promise<Register> => (await import('./state-commands.js')).registerStateCommands;
const suspend = async (): Promise<Register> => (await import('./suspend.js')).registerSuspend;

/** Each command name and the module that registers it. */
const COMMANDS: Record<string, () => Promise<Register>> = {
  apply,
  check,
  doctor,
  history: stateCommands,
  init,
  plan,
  reconcile: serve,
  recover: stateCommands,
  resume: suspend,
  rollback: stateCommands,
  schemas,
  secrets,
  serve,
  status: stateCommands,
  suspend,
  unpin: stateCommands,
};

async function main(argv: string[]): Promise<void> {
  if (argv.length === 3 && (argv[2] === '--version' || argv[2] === '-V')) {
    process.stdout.write(`${ENGINE_VERSION}\n`);
    return;
  }
  const program = new Command()
    .name('edge-reconciler')
    .description('Git-driven reconciler for small edge data centers: Caddy, systemd units, env files, UFW and config files')
    .version(ENGINE_VERSION)
    .showHelpAfterError();
  const named = COMMANDS[argv[2] ?? ''];
  const loaders = named ? [named] : [...new Set(Object.values(COMMANDS))];
  for (const register of await Promise.all(loaders.map((load) => load()))) register(program);
  await program.parseAsync(argv);
}

// Not a top-level await: the bundled executable is CommonJS.
main(process.argv).catch((error: unknown) => {
  // A named error (a damaged state file read by `status` or `history`) is a message for the operator, not a bug.
  if (error instanceof EdgeError) process.exitCode = printError(error);
  else {
    console.error(error);
    process.exitCode = 1;
  }
});
