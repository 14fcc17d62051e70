/**
 * Validates generic files with the command each one declares (`validate:`), run on the staged copy: no shell, cwd
 * the staging dir, HOME inside it, a timeout. Output in problems shows host paths, never staging paths.
 */
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Problem } from '../../reconciler/errors.js';
import type { RenderedFile, ValidateInput } from '../types.js';

/** How long one validate command may take. */
export const FILE_VALIDATE_TIMEOUT_MS = 30_000;

/** Runs every declared validate command; returns one problem per failing file. */
export async function validateFiles(input: ValidateInput): Promise<Problem[]> {
  const checked = input.files.filter((file) => file.validateCommand && file.validateCommand.length > 0);
  if (checked.length === 0) return [];
  const root = join(input.stagingDir, '.file-validate');
  await mkdir(root, { recursive: true, mode: 0o700 });
  const results = await Promise.all(checked.map((file) => runValidateCommand(file, input, root)));
  return results.filter((problem): problem is Problem => problem !== undefined);
}

/** Runs one file's validate command; undefined when it exits 0. */
async function runValidateCommand(file: RenderedFile, input: ValidateInput, root: string): Promise<Problem | undefined> {
  const declared = file.validateCommand ?? [];
  const staged = join(input.stagingDir, file.path);
  const [command = '', ...args] = declared.map((word) => word.replaceAll('%s', staged));
  const home = await mkdtemp(join(root, 'home-'));
  const result = await execa(command, args, {
    reject: false,
    timeout: FILE_VALIDATE_TIMEOUT_MS,
    cancelSignal: input.signal,
    extendEnv: false,
    env: {
      PATH: withSbin(process.env.PATH),
      HOME: home,
      XDG_CONFIG_HOME: join(home, 'config'),
      XDG_DATA_HOME: join(home, 'data'),
      XDG_STATE_HOME: join(home, 'state'),
      XDG_CACHE_HOME: join(home, 'cache'),
      LC_ALL: 'C.UTF-8',
    },
    cwd: input.stagingDir,
    stdin: 'ignore',
  });
  if (result.exitCode === 0) return undefined;
  const where = { file: file.template ?? file.source.file, ...(file.template ? {} : lineOf(file)) };
  const shown = `validate command "${describeCommand(declared)}"`;
  if (result.code === 'ENOENT' || result.code === 'EACCES') {
    return {
      code: 'FILE_VALIDATE_COMMAND',
      ...where,
      message: `${shown} for ${file.path} cannot run: ${declared[0]} is ${result.code === 'ENOENT' ? 'not installed (or not on PATH)' : 'not executable'}`,
    };
  }
  if (result.timedOut) {
    return {
      code: 'VALIDATOR_TIMEOUT',
      ...where,
      message: `${shown} for ${file.path} took longer than ${FILE_VALIDATE_TIMEOUT_MS / 1000} s`,
    };
  }
  if (result.isCanceled) return { code: 'VALIDATOR_CANCELLED', ...where, message: `${shown} for ${file.path} was cancelled` };
  const exit = result.exitCode === undefined ? `signal ${result.signal ?? 'unknown'}` : `exit ${result.exitCode}`;
  const output = summarizeOutput(String(result.stderr ?? ''), String(result.stdout ?? ''), input.stagingDir);
  return {
    code: 'FILE_VALIDATE',
    ...where,
    message: `${shown} failed for ${file.path} (${exit})${output ? `: ${output}` : ''}`,
  };
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
