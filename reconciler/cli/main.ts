#!/usr/bin/env node
/**
 * The `edge-reconciler` command line. Only the module of the command being run is loaded (a `status` from a timer
 * or a hook should not pay for the agent, the validators and the git source); `--help` and unknown commands load
 * them all, so the help lists every command.
 */
import { setFlagsFromString } from 'node:v8';
import { Command } from 'commander';
import { EdgeError } from '../errors.js';
import { printError } from './io.js';
import { ENGINE_VERSION } from '../version.js';

/**
 * V8 hands a function to its optimizing compiler once it has run ~132 KB of bytecode. A command lives a second or
 * two: at 1000 apps that compiler spent ~0.35 s of CPU on background threads in a one-change run (a fifth of the
 * run), mostly on code the process then barely used. Eight times the budget leaves only truly hot code to it: one
 * change ~15% less CPU, measured as pairs (bench/README.md). Set before any command's modules are loaded.
 */
setFlagsFromString('--interrupt-budget=1048576');

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
