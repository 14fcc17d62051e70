/**
 * The agent's logger: pino with ISO 8601 times, a `notice` level between info and warn, every string redacted,
 * and one of two line formats: `json` (for journald and Loki; under systemd each line starts with the `<N>`
 * priority prefix that journald reads through `SyslogLevelPrefix=`) or `pretty` (for a person at a terminal).
 * docs/logs.md lists the fields.
 */
import { fstatSync } from 'node:fs';
import pino from 'pino';
import { EdgeError } from '../errors.js';
import type { Logger } from '../run-context.js';
import { scrub } from '../source/git-errors.js';

/** How lines look: JSON (journald, Loki) or text for a terminal. */
export type LogFormat = 'json' | 'pretty';

/** The formats `--log-format` accepts. */
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

/** pino's levels with `notice` added (syslog's 5, between info and warn). */
const LEVELS = { trace: 10, debug: 20, info: 30, notice: 35, warn: 40, error: 50, fatal: 60 } as const;

/** The syslog priority of each level, as journald stores it (`journalctl -p`). */
export const SYSLOG_PRIORITY: Record<string, number> = { trace: 7, debug: 7, info: 6, notice: 5, warn: 4, error: 3, fatal: 2 };

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Only warnings and errors. */
  quiet?: boolean;
  /** The line format; default: pretty at a terminal, else JSON. */
  format?: LogFormat;
  /** The host every line names (the `host` field). */
  host?: string;
  /** Where lines go (default stderr); tests pass a collector. */
  write?: (line: string) => void;
  /** Prefix lines with `<N>` (default: when stderr is the journal stream systemd gave us). */
  priorityPrefix?: boolean;
}

/**
 * True when stderr is connected to journald: systemd sets JOURNAL_STREAM to the `device:inode` of that stream, and
 * a child that inherited the variable but writes elsewhere must not get the prefix.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const stream = env.JOURNAL_STREAM;
  if (!stream) return false;
  try {
    const stat = fstatSync(2);
    return stream === `${stat.dev}:${stat.ino}`;
  } catch {
    return false;
  }
}

/** The `--log-format` value checked: undefined (automatic), json or pretty. */
export function parseLogFormat(value: string | undefined): LogFormat | undefined {
  if (value === undefined) return undefined;
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new EdgeError('USAGE', `--log-format must be json or pretty, not ${JSON.stringify(value)}`, { stage: 'fetch', retry: 'invalid' });
}

/** A pino logger whose string fields and messages pass through `redactSecrets`, and lose any URL's userinfo. */
export function createLogger(redactSecrets: (text: string) => string, quietOrOptions: boolean | LoggerOptions = false): Logger {
  const options: LoggerOptions = typeof quietOrOptions === 'boolean' ? { quiet: quietOrOptions } : quietOrOptions;
  const redact = (text: string) => scrub(redactSecrets(text), []);
  const journal = options.priorityPrefix ?? (options.write === undefined && stderrIsJournal());
  const format = options.format ?? (journal || !process.stderr.isTTY ? 'json' : 'pretty');
  // sonic-boom (pino's own stderr writer) retries a full pipe instead of failing the write.
  const write = options.write ?? stderrWriter();
  return pino(
    {
      customLevels: { notice: LEVELS.notice },
      level: options.quiet ? 'warn' : 'debug',
      base: { app: 'edge-reconciler', ...(options.host ? { host: options.host } : {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          const clean = args.map((arg) => (typeof arg === 'string' ? redact(arg) : arg && typeof arg === 'object' ? JSON.parse(redact(JSON.stringify(arg))) : arg));
          method.apply(this, clean as Parameters<typeof method>);
        },
      },
    },
    { write: (line: string) => write(formatLine(line, format, journal)) },
  ) as unknown as Logger;
}

function stderrWriter(): (line: string) => void {
  const destination = pino.destination({ fd: 2, sync: true });
  return (line) => destination.write(line);
}

/** One pino JSON line in the chosen format, with journald's `<N>` prefix when asked. */
export function formatLine(json: string, format: LogFormat, prefix: boolean): string {
  const record = JSON.parse(json) as Record<string, unknown>;
  const level = String(record.level);
  const head = prefix ? `<${SYSLOG_PRIORITY[level] ?? 6}>` : '';
  return `${head}${format === 'json' ? json.trimEnd() : prettyLine(record)}\n`;
}

const HIDDEN = new Set(['level', 'time', 'msg', 'app', 'pid', 'hostname']);

/** `2026-12-01T10:00:00.000Z WARN  message  key=value …`: what a person reads at a terminal. */
function prettyLine(record: Record<string, unknown>): string {
  const fields = Object.entries(record)
    .filter(([key, value]) => !HIDDEN.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? (/\s/.test(value) ? JSON.stringify(value) : value) : JSON.stringify(value)}`);
  const level = String(record.level).toUpperCase().padEnd(6);
  return `${String(record.time)} ${level} ${String(record.msg ?? '')}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}`;
}
