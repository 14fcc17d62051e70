/**
 * Renders a ufw resource: its default policies and rules as data (RenderedFile.ufw) and as a rules file of ufw
 * commands under /etc/edge-reconciler/ufw/. Bad addresses and ports are refused here, before anything is staged.
 */
import type { Problem } from '../../reconciler/errors.js';
import type { SourceRef } from '../../reconciler/model.js';
import { fileBase, withFinalNewline } from '../common.js';
import { RenderProblems, type RenderInput, type RenderedFile, type UfwDefaults, type UfwRule } from '../types.js';
import { parseNetwork, portProblem } from './address.js';
import { formatDefaults, formatRule, UFW_BUILTIN_DEFAULTS } from './rule-text.js';

/** Where the rules files live; activation replays them in path order. */
export const UFW_RULES_DIR = '/etc/edge-reconciler/ufw';

interface RuleSpec {
  action: UfwRule['action'];
  direction?: UfwRule['direction'];
  interface?: string;
  port?: number | string;
  proto?: UfwRule['proto'];
  from?: string;
  to?: string;
  comment?: string;
}

interface UfwSpec {
  defaults?: Partial<UfwDefaults>;
  rules?: RuleSpec[];
}

/** Renders one ufw resource into its rules file; throws RenderProblems naming every bad rule. */
export function renderUfw(input: RenderInput): RenderedFile[] {
  const { resource } = input;
  const spec = resource.spec as UfwSpec;
  const rules = (spec.rules ?? []).map((rule, index) => toRule(rule, ruleSource(resource.source, index)));
  const problems = rules.flatMap(ruleProblems);
  if (problems.length > 0) throw new RenderProblems(problems);
  const defaults = spec.defaults ? { ...UFW_BUILTIN_DEFAULTS, ...spec.defaults } : undefined;
  const base = fileBase(input);
  const lines = [
    `# managed by edge-reconciler: ${base.resource}`,
    ...(defaults ? formatDefaults(defaults) : []),
    ...rules.map(formatRule),
  ];
  return [
    {
      ...base,
      owner: 'root',
      group: 'root',
      path: `${UFW_RULES_DIR}/${resource.name}.rules`,
      content: withFinalNewline(lines.join('\n')),
      mode: 0o644,
      ufw: { ...(defaults ? { defaults } : {}), rules },
    },
  ];
}

/** The declaration of rule `index`: same file and line as the resource, its own JSON pointer. */
function ruleSource(source: SourceRef, index: number): SourceRef {
  return { ...source, path: `${source.path ?? ''}/rules/${index}` };
}

/** Normalizes a declared rule: direction defaults to in, port becomes text, "any" becomes absent. */
function toRule(spec: RuleSpec, source: SourceRef): UfwRule {
  const rule: UfwRule = { action: spec.action, direction: spec.direction ?? 'in', source };
  if (spec.interface !== undefined) rule.interface = spec.interface;
  if (spec.port !== undefined) rule.port = String(spec.port);
  if (spec.proto !== undefined) rule.proto = spec.proto;
  if (spec.from !== undefined && spec.from !== 'any') rule.from = spec.from;
  if (spec.to !== undefined && spec.to !== 'any') rule.to = spec.to;
  if (spec.comment !== undefined && spec.comment !== '') rule.comment = spec.comment;
  return rule;
}

/** What ufw would refuse, or what would make the rule mean something else than it says. */
export function ruleProblems(rule: UfwRule): Problem[] {
  const reasons: string[] = [];
  for (const side of ['from', 'to'] as const) {
    const address = rule[side];
    if (address !== undefined && !parseNetwork(address)) {
      reasons.push(`${side} "${address}" is not an IPv4/IPv6 address or CIDR`);
    }
  }
  const from = rule.from ? parseNetwork(rule.from) : undefined;
  const to = rule.to ? parseNetwork(rule.to) : undefined;
  if (from && to && from.family !== to.family) reasons.push(`from and to mix IPv4 and IPv6`);
  if (rule.port !== undefined) {
    const reason = portProblem(rule.port, rule.proto !== undefined);
    if (reason) reasons.push(reason);
  }
  return reasons.map((reason) => ({ code: 'UFW_RULE_INVALID', ...rule.source, message: `ufw rule: ${reason}` }));
}
