/**
 * Redaction: the last line of defence that keeps secret values out of logs, plans, status and error output.
 * Renderers and validators already avoid printing values; this catches what a tool echoes back.
 */

/** Secret values shorter than this are not redacted: replacing every "1" would destroy the output. */
export const MIN_REDACTED_LENGTH = 4;

/** The placeholder that stands where a secret value was. */
export const REDACTED = '<redacted>';

/** A function that replaces every occurrence of any of `values` in a text. */
export type Redactor = (text: string) => string;

/** Builds a redactor for a set of secret values (longest first, so overlapping values are fully covered). */
export function redactorFor(values: Iterable<string>): Redactor {
  const list = [...new Set(values)].filter((value) => value.length >= MIN_REDACTED_LENGTH);
  if (list.length === 0) return (text) => text;
  list.sort((a, b) => b.length - a.length);
  if (list.length > MANY_VALUES) return prefixRedactor(list);
  const pattern = new RegExp(list.map((value) => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return (text) => text.replace(pattern, REDACTED);
}

/** Past this many values, one regex alternation costs a try per value at every position of the text. */
const MANY_VALUES = 32;

/**
 * The same replacement as the regex (leftmost match, longest value first at a position), for many values: the
 * values are found by their first MIN_REDACTED_LENGTH characters in a map, so each position costs one lookup.
 */
function prefixRedactor(longestFirst: readonly string[]): Redactor {
  const byPrefix = new Map<string, string[]>();
  for (const value of longestFirst) {
    const prefix = value.slice(0, MIN_REDACTED_LENGTH);
    const bucket = byPrefix.get(prefix);
    if (bucket) bucket.push(value);
    else byPrefix.set(prefix, [value]);
  }
  return (text) => {
    let out = '';
    let copied = 0;
    for (let at = 0; at + MIN_REDACTED_LENGTH <= text.length; ) {
      const bucket = byPrefix.get(text.slice(at, at + MIN_REDACTED_LENGTH));
      const found = bucket?.find((value) => text.startsWith(value, at));
      if (found === undefined) {
        at++;
        continue;
      }
      out += text.slice(copied, at) + REDACTED;
      at += found.length;
      copied = at;
    }
    return copied === 0 ? text : out + text.slice(copied);
  };
}
