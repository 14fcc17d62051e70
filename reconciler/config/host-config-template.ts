/**
 * The commented default host config that `edge-reconciler init` writes, generated from the config's JSON Schema so
 * that every key, its description and its default stay in step with what the loader accepts.
 */
import { hostname } from 'node:os';
import { stringify } from 'yaml';
import { hostConfigSchema } from './host-config-schema.js';

/** Values `init` puts into the default config instead of the schema's defaults and examples. */
export interface DefaultConfigOptions {
  repo?: string;
  /** The branch to follow; exclusive with tagPattern (then `ref` is written commented out). */
  ref?: string;
  tagPattern?: string;
  path?: string;
  host?: string;
  /** A file holding the webhook secret: the webhook is then enabled. */
  webhookSecretFile?: string;
  stateDir?: string;
  secretsDir?: string;
}

interface SchemaNode {
  type?: string;
  description?: string;
  default?: unknown;
  examples?: readonly unknown[];
  enum?: readonly unknown[];
  properties?: Readonly<Record<string, SchemaNode>>;
  items?: SchemaNode;
  required?: readonly string[];
}

const WIDTH = 116;

/** A value that writes its key commented out, default and all (a key that another one replaces). */
const COMMENTED_OUT = Symbol('commented out');

/** This machine's name as a host name (`[a-z0-9][a-z0-9-]*`): the first label, lowercased, odd characters dropped. */
export function defaultHostName(): string {
  const label = (hostname().split('.')[0] ?? '').toLowerCase().replace(/[^a-z0-9-]/g, '').replace(/^-+/, '');
  return label === '' ? 'edge-host' : label;
}

function scalar(value: unknown): string {
  return stringify(value, { lineWidth: 0 }).trim();
}

/** Wraps `text` into comment lines at `indent`; `hang` indents the text inside the comment. */
function comment(indent: string, text: string, hang = ''): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && indent.length + 2 + hang.length + line.length + 1 + word.length > WIDTH) {
      lines.push(`${indent}# ${hang}${line}`);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(`${indent}# ${hang}${line}`);
  return lines;
}

function describeKey(node: SchemaNode, required: boolean): string {
  const text = node.description ?? '';
  if (required) return `${text} Required.`;
  if (node.type === 'object') return text;
  if (node.default !== undefined) return `${text} Default: ${scalar(node.default)}.`;
  return `${text} Not set by default.`;
}

function renderObject(node: SchemaNode, indent: string, values: Record<string, unknown>, top: boolean): string[] {
  const lines: string[] = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    if (top && lines.length > 0) lines.push('');
    const required = node.required?.includes(key) ?? false;
    lines.push(...comment(indent, describeKey(child, required)));
    if (child.type === 'object' && child.properties) {
      const nested = (values[key] ?? {}) as Record<string, unknown>;
      lines.push(`${indent}${key}:`, ...renderObject(child, `${indent}  `, nested, false));
    } else if (child.type === 'array' && child.items?.properties) {
      lines.push(...renderArrayExample(key, child, indent));
    } else if (values[key] === COMMENTED_OUT) {
      lines.push(`${indent}# ${key}: ${scalar(child.default ?? child.examples?.[0])}`);
    } else if (values[key] !== undefined) {
      lines.push(`${indent}${key}: ${scalar(values[key])}`);
    } else if (child.default !== undefined) {
      lines.push(`${indent}${key}: ${scalar(child.default)}`);
    } else if (child.examples?.[0] !== undefined) {
      lines.push(`${indent}${required ? '' : '# '}${key}: ${scalar(child.examples[0])}`);
    }
  }
  return lines;
}

/** A list of objects is shown as a commented example, after a comment line per field of its items. */
function renderArrayExample(key: string, node: SchemaNode, indent: string): string[] {
  const items = node.items as SchemaNode;
  const lines = comment(indent, 'Each entry has:');
  for (const [field, child] of Object.entries(items.properties ?? {})) {
    lines.push(...comment(indent, `${field}: ${describeKey(child, items.required?.includes(field) ?? false)}`, '  '));
  }
  if (node.examples?.[0] !== undefined) {
    lines.push(...comment(indent, 'For example:'));
    const example = stringify({ [key]: node.examples[0] }, { lineWidth: 0 }).trimEnd().split('\n');
    lines.push(...example.map((line) => `${indent}# ${line}`));
  }
  return lines;
}

/** The fully commented default config; it loads as is (the repo is a placeholder unless given). */
export function renderDefaultConfig(options: DefaultConfigOptions = {}): string {
  const schema = hostConfigSchema as unknown as SchemaNode;
  const values: Record<string, unknown> = {
    repo: options.repo,
    ref: options.tagPattern !== undefined ? COMMENTED_OUT : options.ref,
    tagPattern: options.tagPattern,
    path: options.path,
    host: options.host ?? defaultHostName(),
    webhook: options.webhookSecretFile !== undefined ? { enabled: true, secretFile: options.webhookSecretFile } : undefined,
    stateDir: options.stateDir,
    secretsDir: options.secretsDir,
  };
  const header = [
    '# yaml-language-server: $schema=/usr/share/edge-reconciler/config.schema.json',
    '# edge-reconciler host config, written by `edge-reconciler init`. Every key is shown with what it does and its',
    '# default; a commented-out key is unset. The agent reads this file at start (restart it after a change).',
    ...(options.repo ? [] : ['# repo below is a placeholder: set it to your desired-state repo.']),
    '',
  ];
  return `${[...header, ...renderObject(schema, '', values, true)].join('\n')}\n`;
}
