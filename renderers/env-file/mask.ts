/**
 * A diff of an env file that shows which keys changed and never a value: what plans print for sensitive files.
 */
import { parseEnvEntries } from './env-syntax.js';

/** The last value of each key, in the order keys first appear (systemd lets a later line win). */
function valuesByKey(text: string | undefined): Map<string, string> {
  const values = new Map<string, string>();
  for (const entry of parseEnvEntries(text ?? '')) values.set(entry.key, entry.value);
  return values;
}

/**
 * `+KEY=<added>` and `~KEY=<changed>` for the keys of the new text in their order, then `-KEY=<removed>` for keys
 * only the old text has, in its order. Unchanged keys, comments and blank lines are left out. `oldText` is
 * undefined when the file does not exist yet.
 */
export function maskEnvDiff(oldText: string | undefined, newText: string): string[] {
  const before = valuesByKey(oldText);
  const after = valuesByKey(newText);
  const lines: string[] = [];
  for (const [key, value] of after) {
    const old = before.get(key);
    if (old === undefined) lines.push(`+${key}=<added>`);
    else if (old !== value) lines.push(`~${key}=<changed>`);
  }
  for (const key of before.keys()) {
    if (!after.has(key)) lines.push(`-${key}=<removed>`);
  }
  return lines;
}
