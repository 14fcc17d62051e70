/**
 * `edge-reconciler check --repo DIR`: renders and validates every host of a desired-state repo with the real
 * tools, for the repo's own CI. Exit 0 only when every host passes. Says so when the repo's own commands could not
 * be confined on this machine.
 */
import type { Command } from 'commander';
import { formatProblem } from '../errors.js';
import { confinement } from '../host/sandbox.js';
import { loadDesiredState } from '../stages/load.js';
import { requireLocalRepo } from '../source/repo-path.js';
import { checkHosts } from './check-hosts.js';
import { wholeNumber } from './context.js';
import { out, printError } from './io.js';
import { setupSecrets } from '../secrets/secrets.js';

interface CheckOptions {
  repo: string;
  host?: string[];
  secretsDir?: string;
  json?: boolean;
  jobs?: string;
}

/** Registers the `check` command. */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('render and validate every host of a desired-state repo with the real tools (for the repo\'s CI)')
    .requiredOption('--repo <dir>', 'the desired-state repo (a checkout or an exported tree)')
    .option('--host <name...>', 'check only these hosts')
    .option('--secrets-dir <dir>', 'render with real secrets from this dir (default: placeholders)')
    .option('--json', 'print the verdicts as JSON')
    .option('--jobs <n>', 'threads that render and validate hosts (default: the cores, at most 2)')
    .action(async (options: CheckOptions) => {
      process.exitCode = await runCheck(options);
    });
}

async function runCheck(options: CheckOptions): Promise<number> {
  let redact = (text: string) => text;
  try {
    const secrets = await setupSecrets(options.secretsDir);
    redact = secrets.redact;
    await requireLocalRepo(options.repo, 'load');
    const state = await loadDesiredState(options.repo);
    const names = options.host ?? [...state.hosts.keys()];
    // Hosts are checked a few at a time per thread, over worker threads when there are many (check-hosts.ts).
    const jobs = options.jobs === undefined ? undefined : wholeNumber('--jobs', options.jobs, 2, 1);
    const verdicts = await checkHosts(state, names, { secretsDir: options.secretsDir, jobs });
    const failed = verdicts.filter((verdict) => verdict.problems.length > 0);
    const sandbox = await confinement();
    if (options.json) {
      out(JSON.stringify({ ok: failed.length === 0, hosts: verdicts, confinement: sandbox }, null, 2), redact);
    } else {
      if (!sandbox.confined) out(`note  repo-supplied commands (validate commands, caddy validate) ran unconfined: ${sandbox.reason ?? 'unknown reason'}`, redact);
      for (const verdict of verdicts) {
        if (verdict.problems.length === 0) {
          out(`ok    ${verdict.host}: ${verdict.files} files rendered and validated`, redact);
        } else {
          out(`FAIL  ${verdict.host}: ${verdict.problems.length} problem(s)`, redact);
          for (const problem of verdict.problems) out(`  ${formatProblem(problem)}`, redact);
        }
      }
      out(failed.length === 0 ? `all ${verdicts.length} hosts pass` : `${failed.length} of ${verdicts.length} hosts fail`, redact);
    }
    return failed.length === 0 ? 0 : 1;
  } catch (error) {
    return printError(error, redact);
  }
}
