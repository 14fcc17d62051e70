/**
 * The subset of systemd's EnvironmentFile= syntax that env files may use: `KEY=VALUE` lines, `#` and `;` comments,
 * blank lines. Findings carry the line number and, when it is a valid name, the KEY: never a value or a line's
 * text, which may be a secret.
 */

/** A valid environment variable name. */
export const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One KEY=VALUE line. */
export interface EnvEntry {
  key: string;
  value: string;
  line: number;
}

/** A line that is not a valid entry; `reason` never quotes the line. */
export interface EnvSyntaxFinding {
  code: 'ENV_SYNTAX' | 'ENV_DUPLICATE_KEY';
  line: number;
  reason: string;
}

/** True for lines systemd skips: blank, `#` or `;` comments. */
export function isEnvCommentOrBlank(line: string): boolean {
  const trimmed = line.trim();
  return trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';');
}

/** Splits env text into entries, in order; lines that are not `KEY=...` are skipped (see findEnvSyntaxProblems). */
export function parseEnvEntries(text: string): EnvEntry[] {
  const entries: EnvEntry[] = [];
  text.split('\n').forEach((line, index) => {
    if (isEnvCommentOrBlank(line)) return;
    const at = line.indexOf('=');
    if (at < 0) return;
    entries.push({ key: line.slice(0, at), value: line.slice(at + 1), line: index + 1 });
  });
  return entries;
}

/** Every syntax finding of env text, in line order. */
export function findEnvSyntaxProblems(text: string): EnvSyntaxFinding[] {
  const findings: EnvSyntaxFinding[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    const number = index + 1;
    if (isEnvCommentOrBlank(line)) return;
    const at = line.indexOf('=');
    if (at < 0) {
      findings.push({ code: 'ENV_SYNTAX', line: number, reason: 'not a KEY=VALUE line' });
      return;
    }
    const key = line.slice(0, at);
    if (!ENV_KEY.test(key)) {
      findings.push({ code: 'ENV_SYNTAX', line: number, reason: `invalid name before "=" (names match ${ENV_KEY.source})` });
      return;
    }
    const value = line.slice(at + 1);
    const quote = value[0];
    if ((quote === '"' || quote === "'") && (value.length < 2 || !value.endsWith(quote))) {
      findings.push({ code: 'ENV_SYNTAX', line: number, reason: `the value of ${key} opens a ${quote === '"' ? 'double' : 'single'} quote it does not close` });
    } else if (value.endsWith('\\')) {
      findings.push({ code: 'ENV_SYNTAX', line: number, reason: `the value of ${key} ends with a backslash (line continuations are not supported)` });
    }
    const previous = seen.get(key);
    if (previous !== undefined) {
      findings.push({ code: 'ENV_DUPLICATE_KEY', line: number, reason: `${key} is already set on line ${previous}` });
    } else {
      seen.set(key, number);
    }
  });
  return findings;
}
