/**
 * The error vocabulary of the reconciler. The loop decides what to do from an error's `retry` class and `code`,
 * never from its message; messages are for people and name the file, line, unit or revision.
 */

/** The named stages of one reconcile, in pipeline order. */
export type Stage =
  | 'fetch'
  | 'load'
  | 'render'
  | 'validate'
  | 'prepare'
  | 'plan'
  | 'apply'
  | 'activate'
  | 'health'
  | 'record'
  | 'rollback';

/**
 * What the loop does after a failure: retry with backoff (transient), wait for a new commit (refused, invalid),
 * or page a human (stuck).
 */
export type RetryClass = 'transient' | 'refused' | 'invalid' | 'stuck';

/** One problem found in a revision: data, so that all problems of a run are reported together. */
export interface Problem {
  /** A stable, documented code such as `SCHEMA` or `UFW_SSH_WORLD` (see docs/errors.md). */
  code: string;
  /** The file the problem is in, relative to the desired-state repo (or an absolute host path). */
  file?: string;
  /** 1-based line in `file`, when known. */
  line?: number;
  /** The path inside a structured file, e.g. `/resources/2/mode`. */
  path?: string;
  /** Lowercase, names the thing; never holds a secret value. */
  message: string;
}

/** Options shared by every EdgeError. */
export interface EdgeErrorOptions {
  stage: Stage;
  retry: RetryClass;
  problems?: Problem[];
  cause?: unknown;
}

/** The one base error of the reconciler: a stable code, the stage, a retry class and the problems behind it. */
export class EdgeError extends Error {
  readonly code: string;
  readonly stage: Stage;
  readonly retry: RetryClass;
  readonly problems: Problem[];

  constructor(code: string, message: string, options: EdgeErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EdgeError';
    this.code = code;
    this.stage = options.stage;
    this.retry = options.retry;
    this.problems = options.problems ?? [];
  }
}

/** A revision that cannot be applied as written: wait for a new commit. Carries every problem found. */
export class InvalidRevisionError extends EdgeError {
  constructor(stage: Stage, problems: Problem[], cause?: unknown) {
    const first = problems[0];
    const summary = first ? formatProblem(first) : 'no details';
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    super(problems.length === 1 && first ? first.code : 'INVALID_REVISION', `${stage} failed: ${summary}${more}`, {
      stage,
      retry: 'invalid',
      problems,
      cause,
    });
    this.name = 'InvalidRevisionError';
  }
}

/** Formats a problem as `file:line: message [CODE]`, the shape editors and CI logs link to. */
export function formatProblem(problem: Problem): string {
  const where = problem.file ? `${problem.file}${problem.line ? `:${problem.line}` : ''}` : '';
  const path = problem.path ? ` (at ${problem.path})` : '';
  return `${where ? `${where}: ` : ''}${problem.message}${path} [${problem.code}]`;
}

/** Throws an InvalidRevisionError for the stage when any problem was collected. */
export function throwIfProblems(stage: Stage, problems: Problem[]): void {
  if (problems.length > 0) throw new InvalidRevisionError(stage, problems);
}
