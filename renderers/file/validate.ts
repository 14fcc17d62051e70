/**
 * Validates generic files with the command each one declares (`validate:`). The command is the repo's code: it runs
 * confined (reconciler/host/sandbox.ts) on a copy of the staged file in its own scratch dir, the only path it may
 * write, with no network, as an unprivileged user, and is killed with everything it started at the timeout. No
 * shell; output in problems shows host paths, never scratch paths.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Problem } from '../../reconciler/errors.js';
import { makeScratchDir, runConfined } from '../../reconciler/host/sandbox.js';
import type { RenderedFile, ValidateInput } from '../types.js';

/** How long one validate command may take by default. */
export const FILE_VALIDATE_TIMEOUT_MS = 30_000;

/** Runs every declared validate command; returns one problem per failing file. */
export async function validateFiles(input: ValidateInput): Promise<Problem[]> {
  const checked = input.files.filter((file) => file.validateCommand && file.validateCommand.length > 0);
  if (checked.length === 0) return [];
  const results = await Promise.all(checked.map((file) => runValidateCommand(file, input)));
  return results.filter((problem): problem is Problem => problem !== undefined);
}

/** Runs one file's validate command; undefined when it exits 0. */
async function runValidateCommand(file: RenderedFile, input: ValidateInput): Promise<Problem | undefined> {
  const declared = file.validateCommand ?? [];
  const timeoutMs = input.commandTimeoutMs ?? FILE_VALIDATE_TIMEOUT_MS;
  const scratchDir = await makeScratchDir('file');
  const scratch = scratchDir.path;
  try {
    const staged = join(scratch, file.path);
    await mkdir(dirname(staged), { recursive: true, mode: 0o755 });
    await writeFile(staged, file.content, { mode: 0o644 });
    await scratchDir.handOver();
    const result = await runConfined({
      argv: declared.map((word) => word.replaceAll('%s', staged)),
      scratchDir: scratch,
      timeoutMs,
      signal: input.signal,
      env: {
        PATH: withSbin(process.env.PATH),
        XDG_CONFIG_HOME: join(scratch, '.config'),
        XDG_DATA_HOME: join(scratch, '.data'),
        XDG_STATE_HOME: join(scratch, '.state'),
        XDG_CACHE_HOME: join(scratch, '.cache'),
        LC_ALL: 'C.UTF-8',
      },
    });
    if (result.exitCode === 0) return undefined;
    const where = { file: file.template ?? file.source.file, ...(file.template ? {} : lineOf(file)) };
    const shown = `validate command "${describeCommand(declared)}"`;
    if (result.startError) {
      return {
        code: 'FILE_VALIDATE_COMMAND',
        ...where,
        message: `${shown} for ${file.path} cannot run: ${declared[0]} is ${startProblem(declared[0] ?? '', result.startError)}`,
      };
    }
    if (result.timedOut) {
      return {
        code: 'VALIDATOR_TIMEOUT',
        ...where,
        message: `${shown} for ${file.path} took longer than ${timeoutMs / 1000} s and was killed with everything it started`,
      };
    }
    if (result.cancelled) return { code: 'VALIDATOR_CANCELLED', ...where, message: `${shown} for ${file.path} was cancelled` };
    const exit = result.exitCode === undefined ? `signal ${result.signal ?? 'unknown'}` : `exit ${result.exitCode}`;
    const output = summarizeOutput(result.stderr, result.stdout, scratch);
    return {
      code: 'FILE_VALIDATE',
      ...where,
      message: `${shown} failed for ${file.path} (${exit})${output ? `: ${output}` : ''}`,
    };
  } finally {
    await scratchDir.remove();
  }
}

function startProblem(program: string, error: 'ENOENT' | 'EACCES'): string {
  if (program.includes('/') && !program.startsWith('/')) return 'a relative path (give a name on PATH or an absolute path)';
  return error === 'ENOENT' ? 'not installed (or not on PATH)' : 'not executable';
}

/** The declared argv as people read it, `%s` kept; long commands are cut. */
export function describeCommand(argv: string[]): string {
  const text = argv.join(' ');
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/**
 * Up to three lines of the tool's output, staging paths turned into host paths. When some lines say error, invalid,
 * failed, unknown or bad, or point at a `file:line:`, only those are shown: tools such as logrotate print banners before the line that matters.
 */
export function summarizeOutput(stderr: string, stdout: string, stagingDir: string): string {
  const text = (stderr.trim() ? stderr : stdout).replaceAll(stagingDir, '');
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const telling = lines.filter((line) => /\b(error|invalid|failed|failure|unknown|bad)\b|:[0-9]+:/i.test(line));
  return (telling.length > 0 ? telling : lines).slice(0, 3).join(' | ');
}

function withSbin(path: string | undefined): string {
  const dirs = (path ?? '/usr/bin:/bin').split(':').filter((dir) => dir !== '');
  for (const dir of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(dir)) dirs.push(dir);
  return dirs.join(':');
}

function lineOf(file: RenderedFile): Pick<Problem, 'line' | 'path'> {
  return {
    ...(file.source.line ? { line: file.source.line } : {}),
    ...(file.source.path ? { path: file.source.path } : {}),
  };
}
