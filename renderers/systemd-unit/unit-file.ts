/**
 * Reading what matters from unit file text: sections, EnvironmentFile= paths, and the unit a timer, path or
 * socket activates. Only the subset systemd's own parser agrees with; verify reports everything else.
 */

/** One `Key=value` assignment with its section and 1-based line. */
export interface UnitAssignment {
  section: string;
  key: string;
  value: string;
  line: number;
}

/** The assignments of a unit file, in order (comments, blank lines and continuations skipped). */
export function parseUnitText(text: string): UnitAssignment[] {
  const out: UnitAssignment[] = [];
  let section = '';
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      return;
    }
    const at = line.indexOf('=');
    if (at <= 0) return;
    out.push({ section, key: line.slice(0, at).trim(), value: line.slice(at + 1).trim(), line: index + 1 });
  });
  return out;
}

/** True when the text has an `[Install]` section, i.e. `systemctl enable` has something to do. */
export function hasInstallSection(text: string): boolean {
  return /^[ \t]*\[Install\][ \t]*$/m.test(text);
}

/**
 * Absolute paths of `EnvironmentFile=` lines: a leading `-` (optional file) is stripped, an empty assignment resets
 * the list (as in systemd), values with specifiers (`%i`, `%h`) cannot be resolved here and are skipped.
 */
export function environmentFiles(text: string): string[] {
  let paths: string[] = [];
  for (const { key, value } of parseUnitText(text)) {
    if (key !== 'EnvironmentFile') continue;
    if (value === '') {
      paths = [];
      continue;
    }
    const path = value.startsWith('-') ? value.slice(1) : value;
    if (!path.startsWith('/') || /%[^%]/.test(path.replace(/%%/g, ''))) continue;
    paths.push(path.replace(/%%/g, '%'));
  }
  return [...new Set(paths)].sort();
}

/**
 * The unit a `.timer` or `.path` unit activates (`Unit=`, else the same name with `.service`), or a `.socket`'s
 * service (`foo@.service` with Accept=yes). Undefined for other types.
 */
export function activatedUnit(name: string, text: string): string | undefined {
  const type = /\.(timer|path|socket)$/.exec(name)?.[1];
  if (!type) return undefined;
  const section = type[0]?.toUpperCase() + type.slice(1);
  const assignments = parseUnitText(text).filter((a) => a.section === section);
  const explicit = assignments.filter((a) => a.key === (type === 'socket' ? 'Service' : 'Unit')).pop();
  if (explicit && explicit.value !== '') return explicit.value;
  const base = name.slice(0, -(type.length + 1));
  const accept = assignments.filter((a) => a.key === 'Accept').pop();
  if (type === 'socket' && accept && /^(yes|true|on|1)$/i.test(accept.value)) return `${base}@.service`;
  return `${base}.service`;
}
