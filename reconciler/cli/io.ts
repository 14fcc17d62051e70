/**
 * What every command shares: printing errors as `file:line: message [CODE]` lines, and output, redacted.
 */
import { stderrIsJournal } from './logger.js';
import { EdgeError, formatProblem } from '../errors.js';
import type { Redactor } from '../secrets/redact.js';

/** Prints an error to stderr: a headline, then every problem on its own line. Returns the exit code (1). */
export function printError(error: unknown, redact: Redactor = (text) => text): number {
  if (error instanceof EdgeError) {
    const lines = error.problems.length > 0 ? error.problems.map(formatProblem) : [error.message];
    const head = `error: ${error.stage} failed${error.problems.length > 1 ? ` with ${error.problems.length} problems` : ''} [${error.code}]`;
    process.stderr.write(atErr(redact([head, ...lines.map((line) => `  ${line}`)].join('\n'))));
  } else {
    process.stderr.write(atErr(redact(`error: ${error instanceof Error ? error.message : String(error)}`)));
  }
  return 1;
}

/** Each line of an error, with journald's err prefix when stderr is the journal (docs/logs.md): `-p err` shows it. */
function atErr(text: string): string {
  const prefix = stderrIsJournal() ? '<3>' : '';
  return `${text.split('\n').map((line) => `${prefix}${line}`).join('\n')}\n`;
}

/** Writes one line (or block) to stdout, redacted. */
export function out(text: string, redact: Redactor): void {
  process.stdout.write(redact(text) + '\n');
}

/** An error in one line: its message (or its problems) and its code. */
export function describeError(error: unknown): string {
  if (error instanceof EdgeError) {
    // A formatted problem already ends with its code.
    return error.problems.length > 0 ? error.problems.map(formatProblem).join('; ') : `${error.message} [${error.code}]`;
  }
  return error instanceof Error ? error.message : String(error);
}
