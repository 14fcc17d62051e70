/**
 * The text of a rules file: one ufw command per line in ufw's own CLI syntax, so activation can replay each line as
 * `ufw <line>` (words split with POSIX shell quoting; only comments are quoted).
 */
import type { UfwDefaults, UfwRule } from '../types.js';

/** ufw's own defaults, which apply when no ufw resource of a host sets them. */
export const UFW_BUILTIN_DEFAULTS: UfwDefaults = { incoming: 'deny', outgoing: 'allow', routed: 'deny' };

/** `default deny incoming`, `default allow outgoing`, `default deny routed`, in that order. */
export function formatDefaults(defaults: UfwDefaults): string[] {
  return [
    `default ${defaults.incoming} incoming`,
    `default ${defaults.outgoing} outgoing`,
    `default ${defaults.routed} routed`,
  ];
}

/**
 * One rule in ufw's extended syntax, e.g. `limit in on eth0 proto tcp from 10.0.0.0/8 to any port 22`.
 * ufw refuses `proto` without a `from`/`to` clause, so a rule that names no address and no port but a proto (or no
 * interface) gets an explicit `from any to any`.
 */
export function formatRule(rule: UfwRule): string {
  const words: string[] = [rule.action, rule.direction];
  if (rule.interface) words.push('on', rule.interface);
  if (rule.proto) words.push('proto', rule.proto);
  if (rule.from) words.push('from', rule.from);
  if (rule.to || rule.port) words.push('to', rule.to ?? 'any');
  if (rule.port) words.push('port', rule.port);
  if (!rule.from && !rule.to && !rule.port && (rule.proto || !rule.interface)) words.push('from', 'any', 'to', 'any');
  if (rule.comment) words.push('comment', `'${rule.comment}'`);
  return words.join(' ');
}
