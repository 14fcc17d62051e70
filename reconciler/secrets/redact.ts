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
  const pattern = new RegExp(list.map((value) => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return (text) => text.replace(pattern, REDACTED);
}
