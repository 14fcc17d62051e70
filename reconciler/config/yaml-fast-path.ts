/**
 * The fast path of the repo's YAML: plain block-and-flow YAML (what a desired-state repo is made of) read by
 * js-yaml, about five times faster than the `yaml` library's document API, with the same value and the same line
 * for every node. `yaml` stays the reference: whatever the fast path cannot vouch for it hands back (undefined), and
 * parseYaml then reads the text with `yaml` as before, which finds every problem and words every message.
 *
 * Why the two agree where the fast path answers:
 * - Plain scalars resolve through `yaml`'s own core-schema tags (their `test` and `resolve`), in its order, so
 *   `0o17`, `.inf`, `True`, `~` and `yes` mean exactly what they mean to `yaml`. Quoted and block scalars are
 *   strings in both.
 * - Anything where the two readers are known to differ, or that the check below cannot follow, is handed back:
 *   directives (`%YAML 1.1` changes the schema), tabs in indentation, lone carriage returns, anchors and aliases
 *   (`yaml` bounds their expansion), explicit tags (none is known to this schema, so js-yaml refuses them), keys
 *   that are null or collections, implicit keys longer than `yaml` allows, quoted scalars over several lines,
 *   empty documents, and every text js-yaml rejects.
 * - The value's shape is checked against what js-yaml reported while reading (its listener's open/close of each
 *   node): every mapping has one key node and one value node per key, every sequence one node per item, or the
 *   text is handed back. The line of a node is where its content starts, as `yaml` counts it.
 *
 * test/unit/config/yaml-fast-path.test.ts compares both readers on every YAML file of the repo, on edge cases and
 * on generated documents.
 */
import { load, Schema, Type, type State } from 'js-yaml';
import { Document, isScalar, type ParseOptions, type ScalarTag } from 'yaml';
import { LineIndex } from '../text-lines.js';

/** A value read on the fast path, with the 1-based line of each node by JSON pointer (as YamlSource.lines). */
export interface FastYaml {
  value: unknown;
  lines: Record<string, number>;
}

/** Thrown inside js-yaml's reader to stop it: the text goes to `yaml`. */
const HAND_BACK = new Error('hand the text back to yaml');

/** What `yaml` reads with, for the tags' resolve functions. */
const YAML_OPTIONS: ParseOptions = { intAsBigInt: false };

/** `yaml`'s core schema as js-yaml implicit types: the scalar tags that resolve plain scalars, in `yaml`'s order. */
const CORE_SCHEMA = new Schema({
  implicit: new Document().schema.tags
    .filter((tag): tag is ScalarTag & { test: RegExp } => tag.default === true && tag.test instanceof RegExp)
    .map((tag, index) => {
      const test = tag.test;
      // Each its own tag name: js-yaml keeps one type per tag, and yaml's int and float have three tests each.
      return new Type(`tag:edge-reconciler,fast-path:${index}`, {
        kind: 'scalar',
        resolve: (text: string | null) => text !== null && test.test(text),
        construct: (text: string) => {
          const value = tag.resolve(text, () => {
            throw HAND_BACK;
          }, YAML_OPTIONS);
          return isScalar(value) ? value.value : value;
        },
      });
    }),
});

/** The reader's state as the listener sees it: js-yaml's typings leave out the node's tag and anchor. */
type ReaderState = State & { tag: string | null; anchor: string | null };

/** One node as the listener saw it: where it opened and closed, and the nodes read inside it. */
interface SeenNode {
  kind: string | null;
  result: unknown;
  open: number;
  close: number;
  children: SeenNode[];
}

/** The longest implicit key (source characters up to its `:`) handed to js-yaml; `yaml` refuses past 1024. */
const MAX_IMPLICIT_KEY = 1000;

/** Texts the fast path never reads: directives, tabs in indentation, carriage returns not followed by a newline. */
const HANDED_BACK_TEXT = /^%|^ *\t|\r(?!\n)/m;

/** Reads `text` on the fast path, or undefined when it must be read by `yaml`. Never throws. */
export function readFast(text: string): FastYaml | undefined {
  if (HANDED_BACK_TEXT.test(text)) return undefined;
  const open: SeenNode[] = [];
  let root: SeenNode | undefined;
  const listener = (event: string, state: State): void => {
    if (event === 'open') {
      open.push({ kind: null, result: undefined, open: state.position, close: 0, children: [] });
      return;
    }
    const { tag, anchor } = state as ReaderState;
    if (anchor !== null || tag === '!') throw HAND_BACK;
    const node = open.pop();
    if (!node) throw HAND_BACK;
    Object.assign(node, { kind: state.kind ?? null, result: state.result, close: state.position });
    const parent = open[open.length - 1];
    if (parent) parent.children.push(node);
    else root = node;
  };
  let value: unknown;
  try {
    value = load(text, { schema: CORE_SCHEMA, listener });
  } catch {
    return undefined;
  }
  if (!root || root.kind === null) return undefined;
  try {
    return { value, lines: new LineMap(text).of(root, value) };
  } catch {
    // HAND_BACK, or a shape this check did not foresee: `yaml` decides.
    return undefined;
  }
}

/** The line of every node of a read document, checked against its value. */
class LineMap {
  private readonly index: LineIndex;
  private readonly lines: Record<string, number> = {};

  constructor(private readonly text: string) {
    this.index = new LineIndex(text);
  }

  of(root: SeenNode, value: unknown): Record<string, number> {
    this.visit(root, value, '');
    return this.lines;
  }

  private visit(seen: SeenNode, value: unknown, pointer: string): void {
    let node = seen;
    // A node js-yaml first tried as the key of a block mapping is reported twice, the second time inside itself.
    while (node.children.length === 1 && node.children[0]?.kind === node.kind && node.children[0]?.result === node.result) {
      node = { ...node.children[0], open: node.open };
    }
    if (node.kind === null) {
      // An empty node (`key:` and nothing): yaml places it where the reader stood, right after the indicator.
      this.lines[pointer] = this.lineAt(node.open);
      return;
    }
    const start = this.contentStart(node.open);
    this.lines[pointer] = this.lineAt(start);
    if (node.kind === 'scalar') {
      const quote = this.text[start];
      if ((quote === '"' || quote === "'") && this.text.slice(start, node.close).includes('\n')) throw HAND_BACK;
    } else if (node.kind === 'mapping') {
      this.visitMapping(node, value as Record<string, unknown>, pointer);
    } else if (node.kind === 'sequence') {
      const items = value as unknown[];
      if (node.children.length !== items.length) throw HAND_BACK;
      node.children.forEach((child, index) => this.visit(child, items[index], `${pointer}/${index}`));
    } else {
      throw HAND_BACK;
    }
  }

  private visitMapping(node: SeenNode, value: Record<string, unknown>, pointer: string): void {
    const keys = Object.keys(value);
    if (node.children.length !== 2 * keys.length) throw HAND_BACK;
    for (let index = 0; index < keys.length; index++) {
      const key = node.children[2 * index];
      const child = node.children[2 * index + 1];
      if (!key || !child || key.result === null || typeof key.result === 'object') throw HAND_BACK;
      const name = String(key.result);
      if (name !== keys[index] || child.open - this.contentStart(key.open) > MAX_IMPLICIT_KEY) throw HAND_BACK;
      this.visit(child, value[name], `${pointer}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    }
  }

  /** The first character of a node's content at or after `at`: past spaces, line breaks and comments. */
  private contentStart(at: number): number {
    let index = at;
    for (;;) {
      const char = this.text[index];
      if (char === ' ' || char === '\t' || char === '\n' || char === '\r') index++;
      else if (char === '#') while (index < this.text.length && this.text[index] !== '\n') index++;
      else return index;
    }
  }

  private lineAt(offset: number): number {
    return this.index.position(offset).line;
  }
}
