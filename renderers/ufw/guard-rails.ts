/**
 * The firewall guard rails, over the union of a host's ufw files: no default "allow" for incoming traffic, no SSH
 * open to the world, and management over the management interface stays possible. Each rail sends a probe packet
 * through a simulation of ufw's first-match evaluation. Pure: no processes, no files.
 */
import type { Problem } from '../../reconciler/errors.js';
import type { Guards, SourceRef } from '../../reconciler/model.js';
import type { RenderedFile, UfwDefaults, UfwRule } from '../types.js';
import { parseNetwork, parsePortRange } from './address.js';
import { formatRule, UFW_BUILTIN_DEFAULTS } from './rule-text.js';

/** A packet the simulation evaluates. `interface` undefined stands for an interface no rule names. */
export interface Probe {
  interface?: string;
  source: string;
  port: number;
  proto: 'tcp' | 'udp';
  /**
   * The verdict the rail fears. A rule whose match cannot be decided (a specific `to` address) counts as matching
   * only when it would produce that verdict: guard rails err on the safe side.
   */
  feared: 'pass' | 'block';
}

/** A host's rules in evaluation order (files by path, rules in order), each with the file it comes from. */
export interface PlacedRule {
  rule: UfwRule;
  file: RenderedFile;
}

/** The outcome of one probe: the first matching rule, or the default policy. */
export interface Verdict {
  action: UfwRule['action'] | UfwDefaults['incoming'];
  rule?: PlacedRule;
}

/** Public sources of the SSH probe: documentation addresses, one per family. */
export const WORLD_SOURCES = ['203.0.113.7', '2001:db8::7'] as const;
/** The source of the management probe: an address of Tailscale's CGNAT range. */
export const MANAGEMENT_SOURCE = '100.100.1.1';

/** Runs a probe through the rules: first match wins, else the default incoming policy. */
export function evaluateProbe(rules: PlacedRule[], defaults: UfwDefaults, probe: Probe): Verdict {
  for (const placed of rules) {
    if (matches(placed.rule, probe)) return { action: placed.rule.action, rule: placed };
  }
  return { action: defaults.incoming };
}

function isPass(action: Verdict['action']): boolean {
  return action === 'allow' || action === 'limit';
}

function matches(rule: UfwRule, probe: Probe): boolean {
  if (rule.direction !== 'in') return false;
  if (rule.interface !== undefined && rule.interface !== probe.interface) return false;
  if (rule.proto !== undefined && rule.proto !== probe.proto) return false;
  if (rule.port !== undefined) {
    const range = parsePortRange(rule.port);
    if (!range || probe.port < range.start || probe.port > range.end) return false;
  }
  const family = probe.source.includes(':') ? 6 : 4;
  if (rule.from !== undefined) {
    const from = parseNetwork(rule.from);
    if (!from || !from.contains(probe.source)) return false;
  }
  if (rule.to !== undefined) {
    const to = parseNetwork(rule.to);
    // ufw puts a rule with an IPv6 `to` into the IPv6 chains only, so it never sees an IPv4 probe.
    if (!to || to.family !== family) return false;
    // The host's own addresses are unknown here: the rule may or may not match; assume the feared outcome.
    return (probe.feared === 'pass') === isPass(rule.action);
  }
  return true;
}

/** The effective defaults of a host's ufw files and the file that sets them; conflicts become problems. */
export function effectiveDefaults(files: RenderedFile[]): {
  defaults: UfwDefaults;
  file?: RenderedFile;
  problems: Problem[];
} {
  const setters = files.filter((file) => file.ufw?.defaults);
  const first = setters[0];
  if (!first?.ufw?.defaults) return { defaults: UFW_BUILTIN_DEFAULTS, problems: [] };
  const wanted = JSON.stringify(first.ufw.defaults);
  const problems = setters
    .filter((file) => JSON.stringify(file.ufw?.defaults) !== wanted)
    .map((file) => ({
      code: 'UFW_DEFAULTS_CONFLICT',
      ...defaultsSource(file),
      message:
        `${file.path} sets ufw defaults (${describeDefaults(file.ufw?.defaults)}) that differ from ` +
        `${first.path} (${describeDefaults(first.ufw?.defaults)}); set them in one ufw resource only`,
    }));
  return { defaults: first.ufw.defaults, file: first, problems };
}

/** Every guard-rail problem of a host's ufw files (sorted by path); empty when the rails hold. */
export function guardRailProblems(files: RenderedFile[], guards: Guards): Problem[] {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const rules: PlacedRule[] = sorted.flatMap((file) => (file.ufw?.rules ?? []).map((rule) => ({ rule, file })));
  const { defaults, file: defaultsFile, problems } = effectiveDefaults(sorted);
  const anchor = defaultsFile ?? sorted[0];
  if (!anchor) return problems;
  if (defaults.incoming === 'allow') {
    problems.push({
      code: 'UFW_DEFAULT_ALLOW',
      ...defaultsSource(anchor),
      message: `${anchor.path}: default incoming policy "allow" opens every port; use deny or reject with allow rules`,
    });
  }
  if (!guards.allowSshFromAnywhere) problems.push(...sshWorldProblems(rules, defaults, anchor, guards));
  if (!guards.allowManagementCut) problems.push(...managementProblems(rules, defaults, anchor, guards));
  return problems;
}

/** SSH from a public address on any interface but the management one must not pass. */
function sshWorldProblems(rules: PlacedRule[], defaults: UfwDefaults, anchor: RenderedFile, guards: Guards): Problem[] {
  const named = rules
    .map(({ rule }) => rule.interface)
    .filter((name): name is string => name !== undefined && name !== guards.managementInterface);
  const interfaces: (string | undefined)[] = [...new Set(named)].sort();
  interfaces.push(undefined);
  const problems: Problem[] = [];
  const reported = new Set<PlacedRule | undefined>();
  for (const iface of interfaces) {
    for (const source of WORLD_SOURCES) {
      const verdict = evaluateProbe(rules, defaults, { interface: iface, source, port: 22, proto: 'tcp', feared: 'pass' });
      if (!isPass(verdict.action) || reported.has(verdict.rule)) continue;
      reported.add(verdict.rule);
      const where = iface ?? `an interface other than ${guards.managementInterface}`;
      const probe = `ssh (22/tcp) from ${source} on ${where}`;
      problems.push({
        code: 'UFW_SSH_WORLD',
        ...(verdict.rule ? verdict.rule.rule.source : defaultsSource(anchor)),
        message:
          `${describeCause(verdict, anchor, probe, 'allowed')}; ssh open to the world is refused ` +
          'unless edge.yaml sets guards.allowSshFromAnywhere: true',
      });
    }
  }
  return problems;
}

/** SSH from a Tailscale address on the management interface must not be denied or rejected. */
function managementProblems(rules: PlacedRule[], defaults: UfwDefaults, anchor: RenderedFile, guards: Guards): Problem[] {
  const iface = guards.managementInterface;
  const verdict = evaluateProbe(rules, defaults, {
    interface: iface,
    source: MANAGEMENT_SOURCE,
    port: 22,
    proto: 'tcp',
    feared: 'block',
  });
  if (isPass(verdict.action)) return [];
  const probe = `management probe (22/tcp from ${MANAGEMENT_SOURCE} on ${iface})`;
  const fix = verdict.rule ? `allow it before this rule` : `add a rule such as "allow in on ${iface}"`;
  return [
    {
      code: 'UFW_MANAGEMENT_CUT',
      ...(verdict.rule ? verdict.rule.rule.source : defaultsSource(anchor)),
      message:
        `${describeCause(verdict, anchor, probe, verdict.action === 'reject' ? 'rejected' : 'denied')}; ` +
        `${fix}, or accept the cut with guards.allowManagementCut: true in edge.yaml`,
    },
  ];
}

function describeCause(verdict: Verdict, anchor: RenderedFile, probe: string, outcome: string): string {
  if (verdict.rule) return `${verdict.rule.file.path}: ${probe} is ${outcome} by rule "${formatRule(verdict.rule.rule)}"`;
  const whose = anchor.ufw?.defaults ? 'the' : 'ufw\'s own';
  return `${anchor.path}: ${probe} is ${outcome} by ${whose} default incoming policy "${verdict.action}"`;
}

function defaultsSource(file: RenderedFile): SourceRef {
  const path = file.ufw?.defaults ? `${file.source.path ?? ''}/defaults` : file.source.path;
  return { file: file.source.file, ...(file.source.line ? { line: file.source.line } : {}), ...(path ? { path } : {}) };
}

function describeDefaults(defaults: UfwDefaults | undefined): string {
  return defaults ? `incoming ${defaults.incoming}, outgoing ${defaults.outgoing}, routed ${defaults.routed}` : 'none';
}
