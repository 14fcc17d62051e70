/**
 * The lockout guard: the guard rails judge a rule set on its own; this judges it against the live host. A rule set
 * that would refuse SSH from a client connected right now (the way operators reach this host), or that allows SSH
 * only over a management interface this host does not have (Tailscale not installed yet), would cut the host off
 * while health still passes. Pure: the caller reads the facts from the host.
 */
import type { Problem } from '../../reconciler/errors.js';
import type { Guards } from '../../reconciler/model.js';
import { SSH_PORT, type SshSession } from '../../reconciler/host/network-facts.js';
import type { RenderedFile } from '../types.js';
import { effectiveDefaults, evaluateProbe, MANAGEMENT_SOURCE, WORLD_SOURCES, type PlacedRule, type Verdict } from './guard-rails.js';
import { formatRule } from './rule-text.js';

/** What is known of the live host's network; an absent field is unknown and not judged. */
export interface LiveNetwork {
  sessions?: SshSession[];
  interfaces?: string[];
}

/** Sources tried on each existing interface when the management interface is missing: public, CGNAT, private. */
const ANY_SOURCES = [...WORLD_SOURCES, MANAGEMENT_SOURCE, '10.1.2.3', '192.168.1.2', 'fd00::2'] as const;

/** Every way the host's ufw files would lock the live host out; empty when they would not or the guard is lifted. */
export function lockoutProblems(files: readonly RenderedFile[], guards: Guards, network: LiveNetwork): Problem[] {
  if (guards.allowHostLockout) return [];
  const sorted = [...files].filter((file) => file.ufw).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const anchor = sorted[0];
  if (!anchor) return [];
  const rules: PlacedRule[] = sorted.flatMap((file) => (file.ufw?.rules ?? []).map((rule) => ({ rule, file })));
  const { defaults } = effectiveDefaults(sorted);
  const lift = 'or lift this guard with guards.allowHostLockout: true in edge.yaml';
  const problems: Problem[] = [];
  const judged = new Set<string>();
  for (const session of network.sessions ?? []) {
    const key = `${session.interface ?? ''}|${session.peer}`;
    if (judged.has(key)) continue;
    judged.add(key);
    const verdict = evaluateProbe(rules, defaults, {
      interface: session.interface,
      source: session.peer,
      port: SSH_PORT,
      proto: 'tcp',
      feared: 'block',
    });
    if (passes(verdict)) continue;
    const where = session.interface ? ` on ${session.interface}` : '';
    problems.push({
      code: 'UFW_LOCKOUT_SSH',
      ...(verdict.rule ? verdict.rule.rule.source : anchor.source),
      message:
        `ssh from ${session.peer}${where} is connected to this host now, and the new rules would refuse it ` +
        `(${cause(verdict)}): allow it before applying, ${lift}`,
    });
  }
  const management = guards.managementInterface;
  if (network.interfaces && !network.interfaces.includes(management)) {
    const others = network.interfaces.filter((name) => name !== 'lo');
    const reachable = others.some((iface) =>
      ANY_SOURCES.some((source) => passes(evaluateProbe(rules, defaults, { interface: iface, source, port: SSH_PORT, proto: 'tcp', feared: 'block' }))),
    );
    if (!reachable) {
      problems.push({
        code: 'UFW_MANAGEMENT_MISSING',
        ...anchor.source,
        message:
          `the rules allow ssh only over ${management}, which this host does not have (no /sys/class/net/${management}; ` +
          `it has ${others.join(', ') || 'no other interface'}): bring ${management} up first, allow ssh on another interface, ${lift}`,
      });
    }
  }
  return problems;
}

function passes(verdict: Verdict): boolean {
  return verdict.action === 'allow' || verdict.action === 'limit';
}

function cause(verdict: Verdict): string {
  return verdict.rule
    ? `${verdict.rule.file.path}: rule "${formatRule(verdict.rule.rule)}"`
    : `the default incoming policy "${verdict.action}"`;
}
