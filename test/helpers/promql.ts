/**
 * What the shipped alert rules and the Grafana dashboard query: every PromQL expression parsed with Prometheus's own
 * grammar (@prometheus-io/lezer-promql, the parser of Prometheus's UI), and the metric and label names it names;
 * and what a real `/metrics` scrape holds, to compare them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { parse as parseYaml } from 'yaml';
import { PROJECT_ROOT } from './paths.js';

/** The monitoring files the project ships. */
export const MONITORING = {
  rules: join(PROJECT_ROOT, 'monitoring', 'rules', 'edge-reconciler.rules.yml'),
  ruleTests: join(PROJECT_ROOT, 'monitoring', 'rules', 'edge-reconciler.rules.test.yml'),
  dashboard: join(PROJECT_ROOT, 'monitoring', 'grafana', 'edge-reconciler.json'),
} as const;

/** One expression and where it comes from (`rule EdgeReconcilerDown`, `panel "Run results" A`). */
export interface Query {
  where: string;
  expr: string;
  /** Label names a legend or annotation prints (`{{host}}`, `$labels.host`). */
  printed: string[];
}

/** The names an expression uses. */
export interface QueryNames {
  metrics: string[];
  labels: string[];
}

/** Parses `expr`; throws naming `where` and the offset of the first syntax error. */
export function namesOf(expr: string, where: string): QueryNames {
  const tree = parser.parse(expr);
  const metrics = new Set<string>();
  const labels = new Set<string>();
  tree.iterate({
    enter(node) {
      if (node.type.isError) throw new Error(`${where}: PromQL syntax error at offset ${node.from} of ${JSON.stringify(expr)}`);
      const text = expr.slice(node.from, node.to);
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') metrics.add(text);
      if (node.name === 'LabelName') labels.add(text);
    },
  });
  return { metrics: [...metrics], labels: [...labels] };
}

/** Grafana's variables, replaced by what they stand for so the expression parses as PromQL. */
export function withoutDashboardVariables(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$__interval', '1m').replaceAll('$__range', '1h').replace(/\$\{?host\}?/g, '.*');
}

/** Every alert rule's expression, with the labels its annotations print. */
export async function ruleQueries(path: string = MONITORING.rules): Promise<Query[]> {
  const document = parseYaml(await readFile(path, 'utf8')) as { groups: { rules: { alert?: string; record?: string; expr: string; annotations?: Record<string, string> }[] }[] };
  return document.groups.flatMap((group) =>
    group.rules.map((rule) => ({
      where: `rule ${rule.alert ?? rule.record ?? '?'}`,
      expr: rule.expr,
      printed: Object.values(rule.annotations ?? {}).flatMap((text) => [...text.matchAll(/\$labels\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => match[1] as string)),
    })),
  );
}

interface Panel {
  title?: string;
  targets?: { refId?: string; expr?: string; legendFormat?: string }[];
  panels?: Panel[];
}

/** Every panel target's expression (rows' nested panels too) and the template variables' queries. */
export async function dashboardQueries(path: string = MONITORING.dashboard): Promise<Query[]> {
  const dashboard = JSON.parse(await readFile(path, 'utf8')) as { panels: Panel[]; templating?: { list: { name: string; query?: unknown }[] } };
  const queries: Query[] = [];
  const visit = (panel: Panel) => {
    for (const target of panel.targets ?? []) {
      if (!target.expr) continue;
      queries.push({
        where: `panel "${panel.title ?? '?'}" ${target.refId ?? ''}`.trim(),
        expr: withoutDashboardVariables(target.expr),
        printed: [...(target.legendFormat ?? '').matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)].map((match) => match[1] as string),
      });
    }
    panel.panels?.forEach(visit);
  };
  dashboard.panels.forEach(visit);
  for (const variable of dashboard.templating?.list ?? []) {
    const query = typeof variable.query === 'string' ? variable.query : (variable.query as { query?: string } | undefined)?.query;
    const labelValues = query && /^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$/.exec(query.trim());
    if (labelValues) queries.push({ where: `variable ${variable.name}`, expr: labelValues[1] as string, printed: [labelValues[2] as string] });
  }
  return queries;
}

/** A scrape in the Prometheus text format: each metric name and the label names its samples carry. */
export function scrapedNames(exposition: string): Map<string, Set<string>> {
  const names = new Map<string, Set<string>>();
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels = names.get(match[1] as string) ?? new Set<string>();
    for (const pair of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(pair[1] as string);
    names.set(match[1] as string, labels);
  }
  return names;
}
