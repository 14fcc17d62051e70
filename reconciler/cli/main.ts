#!/usr/bin/env node
/**
 * The `edge-reconciler` command line.
 */
import { Command } from 'commander';
import { EdgeError } from '../errors.js';
import { printError } from './io.js';
import { registerApply } from './apply.js';
import { registerCheck } from './check.js';
import { registerDoctor } from './doctor.js';
import { registerInit } from './init.js';
import { registerPlan } from './plan.js';
import { registerSchemas } from './schemas.js';
import { registerSecrets } from './secrets.js';
import { registerServe } from './serve.js';
import { registerStateCommands } from './state-commands.js';
import { registerSuspend } from './suspend.js';
import { ENGINE_VERSION } from '../version.js';

const program = new Command()
  .name('edge-reconciler')
  .description('Git-driven reconciler for small edge data centers: Caddy, systemd units, env files, UFW and config files')
  .version(ENGINE_VERSION)
  .showHelpAfterError();

registerApply(program);
registerCheck(program);
registerDoctor(program);
registerInit(program);
registerPlan(program);
registerSchemas(program);
registerSecrets(program);
registerServe(program);
registerStateCommands(program);
registerSuspend(program);

// Not a top-level await: the bundled executable is CommonJS.
program.parseAsync(process.argv).catch((error: unknown) => {
  // A named error (a damaged state file read by `status` or `history`) is a message for the operator, not a bug.
  if (error instanceof EdgeError) process.exitCode = printError(error);
  else {
    console.error(error);
    process.exitCode = 1;
  }
});
