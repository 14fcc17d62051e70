#!/usr/bin/env node
/**
 * The `edge-reconciler` command line.
 */
import { Command } from 'commander';
import { EdgeError } from '../errors.js';
import { printError } from './io.js';
import { registerApply } from './apply.js';
import { registerCheck } from './check.js';
import { registerInit } from './init.js';
import { registerPlan } from './plan.js';
import { registerSchemas } from './schemas.js';
import { registerServe } from './serve.js';
import { registerStateCommands } from './state-commands.js';
import { registerSuspend } from './suspend.js';

const program = new Command()
  .name('edge-reconciler')
  .description('Git-driven reconciler for small edge data centers: Caddy, systemd units, env files, UFW and config files')
  .version('0.1.0')
  .showHelpAfterError();

registerApply(program);
registerCheck(program);
registerInit(program);
registerPlan(program);
registerSchemas(program);
registerServe(program);
registerStateCommands(program);
registerSuspend(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // A named error (a damaged state file read by `status` or `history`) is a message for the operator, not a bug.
  if (!(error instanceof EdgeError)) throw error;
  process.exitCode = printError(error);
}
