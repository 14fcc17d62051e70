/**
 * The hook runner: roles may declare executables (`hooks:` in role.yaml) that run around an apply with the EDGE_*
 * environment contract, confined by the namespace sandbox of `reconciler/host/sandbox.ts` (a copy of the role
 * folder in a scratch dir that is the only writable path, no network unless the hook declares it, as `nobody`),
 * a timeout that kills the hook and everything it started, and captured, redacted output. Hooks are the repo's
 * own code; they get no secret values and none of the agent's environment.
 */
import { constants } from 'node:fs';
import { access, cp, realpath, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { makeScratchDir, runConfined, type ConfinedResult } from '../reconciler/host/sandbox.js';
import type { HookPhase, RoleSpec } from '../reconciler/model.js';

/** One hook to run: a role's script for a phase. */
export interface HookInvocation {
  phase: HookPhase;
  role: string;
  /** absolute path of the script inside the exported tree */
  script: string;
  /** The role folder (`<tree>/roles/<role>`): copied into the hook's scratch dir as its working directory. */
  cwd: string;
  /** Run in the host's network namespace (`network: true`); otherwise the hook has no network. */
  network: boolean;
}

/** What the hooks of one run are told, as EDGE_* variables. */
export interface HookEnv {
  revision: string;
  generation: number;
  host: string;
  result?: 'success' | 'failure' | 'rolled-back';
  error?: string;
}

/** How one hook ended. */
export interface HookOutcome {
  phase: HookPhase;
  role: string;
  script: string;
  /** 0 on success; 126 not executable / outside its role folder, 127 missing, 128+n killed by signal n. */
  exitCode: number;
  timedOut: boolean;
  durationMs: number;
  /** last 4 KiB of stdout+stderr, redacted */
  output: string;
  /** Not run: `--dry-activate`. */
  skipped: boolean;
}

/** How hooks run. */
export interface HookOptions {
  /** Per hook; default 60 s. On timeout the hook, and everything it started, gets SIGKILL. */
  timeoutMs?: number;
  /** `--dry-activate`: report every hook as skipped, run none. */
  dryRun?: boolean;
  /** Called once per hook as it ends (the caller logs it). */
  log?: (outcome: HookOutcome) => void;
  redact?: (s: string) => string;
  /** Stops the running hook (it and what it started are killed) and runs no further ones. */
  signal?: AbortSignal;
}

/** Default timeout of one hook. */
export const DEFAULT_HOOK_TIMEOUT_MS = 60_000;

/** The whole PATH a hook gets: system directories only, never the agent's own. */
export const HOOK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** How much of a hook's output is kept. */
export const MAX_HOOK_OUTPUT_BYTES = 4 * 1024;

/** The longest EDGE_ERROR passed to a hook. */
const MAX_ERROR_CHARS = 2_000;

/** The exit code of a hook the timeout or a cancel killed (128 + SIGKILL). */
const KILLED_EXIT = 128 + osConstants.signals.SIGKILL;

/** Starts the hook in the copy of its role folder, its stderr joined to its stdout (the sandbox's own stays apart). */
const LAUNCH = 'cd "$1" || exit 125; exec "$2" 2>&1';

/** The hooks of `phase` of `roles`, in role order; script paths are relative to `roles/<role>/` of the tree. */
export function hooksFor(phase: HookPhase, roles: RoleSpec[], treeDir: string): HookInvocation[] {
  const hooks: HookInvocation[] = [];
  for (const role of roles) {
    const hook = role.hooks[phase];
    if (!hook) continue;
    const cwd = resolve(treeDir, 'roles', role.name);
    hooks.push({ phase, role: role.name, script: resolve(cwd, hook.script), cwd, network: hook.network });
  }
  return hooks;
}

/** The environment of a hook: the EDGE_* contract and a minimal PATH, nothing inherited. */
export function hookEnvironment(phase: HookPhase, role: string, env: HookEnv, redact: (s: string) => string): Record<string, string> {
  return {
    PATH: HOOK_PATH,
    LANG: 'C.UTF-8',
    EDGE_PHASE: phase,
    EDGE_ROLE: role,
    EDGE_HOST: env.host,
    EDGE_REVISION: env.revision,
    EDGE_GENERATION: String(env.generation),
    EDGE_RESULT: env.result ?? '',
    EDGE_ERROR: env.error ? redact(env.error).slice(0, MAX_ERROR_CHARS) : '',
  };
}

/**
 * Runs the hooks of one phase one after the other. `pre-apply` stops at the first failure (non-zero exit or
 * timeout) and returns the outcomes so far: the caller refuses the apply (`firstFailure`, code HOOK_FAILED).
 * Every other phase runs every hook and only reports failures. Never throws for a failing hook.
 */
export async function runHooks(
  phase: HookPhase,
  hooks: HookInvocation[],
  env: HookEnv,
  options: HookOptions = {},
): Promise<HookOutcome[]> {
  const redact = options.redact ?? ((text: string) => text);
  const outcomes: HookOutcome[] = [];
  for (const hook of hooks) {
    if (options.signal?.aborted) break;
    const outcome = options.dryRun
      ? { ...base(phase, hook), output: 'dry-activate: not run', skipped: true }
      : await runHook(phase, hook, hookEnvironment(phase, hook.role, env, redact), options, redact);
    outcomes.push(outcome);
    options.log?.(outcome);
    if (phase === 'pre-apply' && isFailure(outcome)) break;
  }
  return outcomes;
}

/** The first hook that failed (non-zero exit or timeout), if any; skipped hooks never fail. */
export function firstFailure(outcomes: HookOutcome[]): HookOutcome | undefined {
  return outcomes.find(isFailure);
}

/** A one-line account of a failed hook for an error message: phase, role, script, exit and its last line. */
export function describeHookFailure(outcome: HookOutcome): string {
  const script = `roles/${outcome.role}/${relative(roleDirOf(outcome), outcome.script)}`;
  const how = outcome.timedOut ? 'timed out' : `exited ${outcome.exitCode}`;
  const lastLine = outcome.output.trimEnd().split('\n').pop()?.trim() ?? '';
  return `${outcome.phase} hook ${script} of role ${outcome.role} ${how}${lastLine ? `: ${lastLine}` : ''}`;
}

function isFailure(outcome: HookOutcome): boolean {
  return !outcome.skipped && (outcome.exitCode !== 0 || outcome.timedOut);
}

/** The role folder of an outcome's script: the part of its path up to `roles/<role>`. */
function roleDirOf(outcome: HookOutcome): string {
  const marker = `${sep}roles${sep}${outcome.role}${sep}`;
  const at = outcome.script.lastIndexOf(marker);
  return at >= 0 ? outcome.script.slice(0, at + marker.length - 1) : join(outcome.script, '..');
}

function base(phase: HookPhase, hook: HookInvocation): Omit<HookOutcome, 'output' | 'skipped'> {
  return { phase, role: hook.role, script: hook.script, exitCode: 0, timedOut: false, durationMs: 0 };
}

/** Refuses a script that is missing (127), not an executable file, or outside its role folder (126). */
async function checkScript(hook: HookInvocation): Promise<{ exitCode: number; message: string } | undefined> {
  const stats = await stat(hook.script).catch(() => undefined);
  if (!stats) return { exitCode: 127, message: `hook script ${hook.script} does not exist` };
  if (!stats.isFile()) return { exitCode: 126, message: `hook script ${hook.script} is not a regular file` };
  const [real, folder] = await Promise.all([realpath(hook.script), realpath(hook.cwd)]);
  const inside = relative(folder, real);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
    return { exitCode: 126, message: `hook script ${hook.script} resolves to ${real}, outside its role folder ${folder}` };
  }
  const executable = await access(hook.script, constants.X_OK).then(
    () => true,
    () => false,
  );
  if (!executable) {
    return { exitCode: 126, message: `hook script ${hook.script} is not executable (git update-index --chmod=+x it)` };
  }
  return undefined;
}

async function runHook(
  phase: HookPhase,
  hook: HookInvocation,
  environment: Record<string, string>,
  options: HookOptions,
  redact: (s: string) => string,
): Promise<HookOutcome> {
  const started = Date.now();
  const refused = await checkScript(hook);
  if (refused) {
    return { ...base(phase, hook), exitCode: refused.exitCode, output: redact(refused.message), skipped: false };
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  const scratch = await makeScratchDir('hook');
  try {
    // A copy: the exported tree is root's and stays out of the sandbox's reach. Symlinks are copied as they are,
    // so one pointing out of the role folder resolves inside the sandbox, as nobody, to what nobody may read.
    const roleDir = join(scratch.path, 'role');
    await cp(hook.cwd, roleDir, { recursive: true, verbatimSymlinks: true });
    await scratch.handOver();
    const result = await runConfined({
      argv: ['/bin/sh', '-c', LAUNCH, 'edge-hook', roleDir, join(roleDir, relative(hook.cwd, hook.script))],
      scratchDir: scratch.path,
      env: environment,
      timeoutMs,
      network: hook.network,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const output = new OutputTail(2 * MAX_HOOK_OUTPUT_BYTES);
    output.push(result.stdout);
    output.push(result.stderr);
    if (result.timedOut) output.push(`\nedge-reconciler: hook timed out after ${timeoutMs / 1000}s and was killed\n`);
    if (result.cancelled) output.push('\nedge-reconciler: hook cancelled and killed\n');
    return {
      ...base(phase, hook),
      exitCode: exitCodeOf(result),
      timedOut: result.timedOut,
      durationMs: Date.now() - started,
      output: output.text(redact, MAX_HOOK_OUTPUT_BYTES),
      skipped: false,
    };
  } finally {
    await scratch.remove();
  }
}

/** The hook's exit code; a hook that was killed, by the timeout, a cancel or a signal, is 128 + the signal. */
function exitCodeOf(result: ConfinedResult): number {
  if (result.timedOut || result.cancelled) return KILLED_EXIT;
  if (result.startError) return result.startError === 'ENOENT' ? 127 : 126;
  if (result.exitCode !== undefined) return result.exitCode;
  return result.signal ? 128 + signalNumber(result.signal) : 1;
}

function signalNumber(name: string): number {
  return (osConstants.signals as Record<string, number | undefined>)[name] ?? 0;
}

/**
 * Keeps the tail of a stream. Redaction runs on a window twice the size kept, so a secret cut in half at the
 * window's start is dropped with the extra half rather than shown in part.
 */
class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly window: number) {}

  push(chunk: Buffer | string): void {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.chunks.push(buffer);
    this.size += buffer.length;
    if (this.size > this.window * 2) this.compact();
  }

  text(redact: (s: string) => string, limit: number): string {
    this.compact();
    const redacted = Buffer.from(redact(Buffer.concat(this.chunks).toString('utf8')));
    if (redacted.length <= limit) return redacted.toString('utf8');
    // Cut on a character boundary: drop the partial UTF-8 sequence at the start.
    let start = redacted.length - limit;
    while (start < redacted.length && ((redacted[start] ?? 0) & 0xc0) === 0x80) start++;
    return redacted.subarray(start).toString('utf8');
  }

  private compact(): void {
    const all = Buffer.concat(this.chunks);
    const kept = all.length > this.window ? all.subarray(all.length - this.window) : all;
    this.chunks = [kept];
    this.size = kept.length;
  }
}
