/**
 * One attempt of each kind of health check: `unit` (systemctl show), `http` (fetch), `tcp` (connect) and
 * `command` (argv through the runner). A probe never throws: it answers with a verdict the retry loop reads.
 */
import { connect } from 'node:net';
import type { CommandRunner } from './host.js';
import type { HealthCheckSpec } from '../model.js';

/** What one attempt saw. `pending` means "not decided yet" (a unit still starting): it does not use up a retry. */
export interface ProbeVerdict {
  ok: boolean;
  pending?: boolean;
  message: string;
}

/** What a probe needs besides the check itself. */
export interface ProbeContext {
  runner: CommandRunner;
  /** This attempt's time budget (the check's timeoutSeconds, clipped to what is left of the deadline). */
  timeoutMs: number;
  /** Aborts when the run is cancelled. */
  signal: AbortSignal;
}

/** The properties `systemctl show` is asked for. */
export const UNIT_PROPERTIES = [
  'ActiveState',
  'SubState',
  'Result',
  'Type',
  'ExecMainStatus',
  'ExecMainExitTimestampMonotonic',
  'LoadState',
] as const;

/** The most of an HTTP body that is read to look for `expectBody`. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Runs one attempt of `check`. */
export async function probe(check: HealthCheckSpec, context: ProbeContext): Promise<ProbeVerdict> {
  try {
    switch (check.type) {
      case 'unit':
        return await probeUnit(String(check.spec.unit), context);
      case 'http':
        return await probeHttp(check.spec, context);
      case 'tcp':
        return await probeTcp(String(check.spec.host), Number(check.spec.port), context);
      case 'command':
        return await probeCommand(check.spec.command as string[], context);
      default:
        return { ok: false, message: `unknown check type ${String(check.type)}` };
    }
  } catch (error) {
    return { ok: false, message: `probe failed: ${(error as Error).message}` };
  }
}

/** Parses `Key=Value` lines of `systemctl show`. */
export function parseSystemctlShow(text: string): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals > 0) properties[line.slice(0, equals).trim()] = line.slice(equals + 1).trim();
  }
  return properties;
}

/** Judges a unit from its `systemctl show` properties. */
export function judgeUnit(unit: string, properties: Record<string, string>): ProbeVerdict {
  const active = properties.ActiveState ?? '';
  const sub = properties.SubState ?? '';
  const result = properties.Result ?? '';
  const status = properties.ExecMainStatus ?? '';
  const state = `${active}${sub ? ` (${sub})` : ''}`;
  const why = [result && result !== 'success' ? `result ${result}` : '', status && status !== '0' ? `exit status ${status}` : '']
    .filter(Boolean)
    .join(', ');
  if (properties.LoadState === 'not-found') return { ok: false, message: `${unit}: unit not found` };
  if (properties.LoadState && properties.LoadState !== 'loaded') {
    return { ok: false, message: `${unit}: unit not loaded (${properties.LoadState})` };
  }
  switch (active) {
    case 'active':
      // RemainAfterExit=yes keeps a finished unit "active (exited)": only a clean exit counts.
      if (sub === 'exited' && why) return { ok: false, message: `${unit}: ${state}, ${why}` };
      return { ok: true, message: `${unit}: ${state}` };
    case 'activating':
    case 'reloading':
      // auto-restart is "activating" too: a unit that crashed and will be started again; its verdict waits.
      return { ok: false, pending: true, message: `${unit}: ${state}${why ? `, ${why}` : ''}` };
    case 'inactive':
      if (isCleanOneshot(properties)) return { ok: true, message: `${unit}: oneshot exited 0` };
      return { ok: false, message: `${unit}: ${state}${why ? `, ${why}` : ', not started'}` };
    case 'failed':
      return { ok: false, message: `${unit}: failed (${why || `result ${result || 'unknown'}`})` };
    default:
      return { ok: false, message: `${unit}: ${state || 'no state reported'}` };
  }
}

function isCleanOneshot(properties: Record<string, string>): boolean {
  const exitedAt = Number(properties.ExecMainExitTimestampMonotonic ?? '0');
  return (
    properties.Type === 'oneshot' &&
    properties.Result === 'success' &&
    properties.ExecMainStatus === '0' &&
    Number.isFinite(exitedAt) &&
    exitedAt > 0
  );
}

async function probeUnit(unit: string, context: ProbeContext): Promise<ProbeVerdict> {
  const result = await context.runner.run(['systemctl', 'show', unit, `--property=${UNIT_PROPERTIES.join(',')}`], {
    timeoutMs: context.timeoutMs,
    signal: context.signal,
  });
  if (result.timedOut) return { ok: false, message: `${unit}: systemctl show gave no answer within ${seconds(context.timeoutMs)}` };
  if (result.exitCode !== 0) {
    return { ok: false, message: `${unit}: systemctl show exited ${result.exitCode}: ${lastLines(result.stderr, 1)}` };
  }
  return judgeUnit(unit, parseSystemctlShow(result.stdout));
}

async function probeHttp(spec: Record<string, unknown>, context: ProbeContext): Promise<ProbeVerdict> {
  const url = String(spec.url);
  const expectStatus = typeof spec.expectStatus === 'number' ? spec.expectStatus : 200;
  const expectBody = typeof spec.expectBody === 'string' ? spec.expectBody : undefined;
  const timeout = AbortSignal.timeout(context.timeoutMs);
  const signal = AbortSignal.any([timeout, context.signal]);
  let response: Response;
  try {
    response = await fetch(url, { redirect: 'manual', signal, headers: { 'user-agent': 'edge-reconciler-health' } });
  } catch (error) {
    if (timeout.aborted) return { ok: false, message: `GET ${url}: no answer within ${seconds(context.timeoutMs)}` };
    return { ok: false, message: `GET ${url}: ${errorCode(error)}` };
  }
  try {
    if (response.status !== expectStatus) {
      return { ok: false, message: `GET ${url}: ${response.status}${expectStatus !== 200 ? ` (expected ${expectStatus})` : ''}` };
    }
    if (expectBody === undefined) return { ok: true, message: `GET ${url}: ${response.status}` };
    const body = await readBody(response, MAX_BODY_BYTES);
    if (!body.includes(expectBody)) return { ok: false, message: `GET ${url}: body lacks ${JSON.stringify(expectBody)}` };
    return { ok: true, message: `GET ${url}: ${response.status}, body has ${JSON.stringify(expectBody)}` };
  } catch (error) {
    if (timeout.aborted) return { ok: false, message: `GET ${url}: body not read within ${seconds(context.timeoutMs)}` };
    return { ok: false, message: `GET ${url}: ${errorCode(error)}` };
  } finally {
    // Release the connection whether or not the body was read.
    await response.body?.cancel().catch(() => undefined);
  }
}

/** Reads at most `limit` bytes of a body as UTF-8. */
async function readBody(response: Response, limit: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

function probeTcp(host: string, port: number, context: ProbeContext): Promise<ProbeVerdict> {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const finish = (verdict: ProbeVerdict): void => {
      clearTimeout(timer);
      context.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(verdict);
    };
    const onAbort = (): void => finish({ ok: false, message: `connect ${where}: cancelled` });
    const timer = setTimeout(
      () => finish({ ok: false, message: `connect ${where}: no connection within ${seconds(context.timeoutMs)}` }),
      context.timeoutMs,
    );
    context.signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish({ ok: true, message: `connect ${where}: connected` }));
    socket.once('error', (error) => finish({ ok: false, message: `connect ${where}: ${errorCode(error)}` }));
  });
}

async function probeCommand(argv: string[], context: ProbeContext): Promise<ProbeVerdict> {
  const result = await context.runner.run(argv, { timeoutMs: context.timeoutMs, signal: context.signal });
  const name = argv[0] ?? '';
  if (result.timedOut) return { ok: false, message: `${name}: no answer within ${seconds(context.timeoutMs)}` };
  if (result.exitCode === 0) return { ok: true, message: `${name}: exit 0` };
  const said = lastLines(result.stderr, 3) || lastLines(result.stdout, 3);
  return { ok: false, message: `${name}: exit ${result.exitCode}${said ? `: ${said}` : ''}` };
}

/** The last `count` non-empty lines of a text, joined with " | " so the message stays one line. */
export function lastLines(text: string, count: number): string {
  return text
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line.trim() !== '')
    .slice(-count)
    .join(' | ');
}

/** The code of a network error (ECONNREFUSED, ENOTFOUND, ...), which fetch hides in `cause`. */
function errorCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  const cause = (error as { cause?: { message?: string } }).cause;
  return cause?.message ?? (error as Error).message ?? String(error);
}

function seconds(ms: number): string {
  return `${Math.round(ms) / 1000}s`;
}
