/**
 * The YAML fast path (reconciler/config/yaml-fast-path.ts) reads what it reads exactly as `yaml` does, the same
 * value and the same line for every node, and hands back what it cannot vouch for: checked on every YAML file of the
 * project, on edge cases, and on generated documents.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseWithYaml } from '../../../reconciler/config/yaml-source.js';
import { readFast } from '../../../reconciler/config/yaml-fast-path.js';
import { appRole, BASE_ROLE, EDGE_YAML, WEB_ROLE } from '../../../bench/generate.js';
import { PROJECT_ROOT } from '../../helpers/paths.js';

/** How the fast path answered on `text`, against `yaml`. */
type Verdict = 'same' | 'handed-back' | { differs: string };

function compare(text: string): Verdict {
  const fast = readFast(text);
  if (!fast) return 'handed-back';
  const reference = parseWithYaml('x.yaml', text);
  if (!reference.source) return { differs: `yaml refuses it: ${reference.problems.map((p) => p.message).join('; ')}` };
  const lines = reference.source.lines?.() ?? {};
  if (!isDeepStrictEqual(fast.value, reference.source.value)) {
    return { differs: `value ${JSON.stringify(fast.value)} vs ${JSON.stringify(reference.source.value)}` };
  }
  if (!isDeepStrictEqual(fast.lines, lines)) return { differs: `lines ${JSON.stringify(fast.lines)} vs ${JSON.stringify(lines)}` };
  return 'same';
}

function differences(texts: readonly string[]): string[] {
  return texts.flatMap((text) => {
    const verdict = compare(text);
    return typeof verdict === 'object' ? [`${JSON.stringify(text)}: ${verdict.differs}`] : [];
  });
}

/** A small seeded generator (mulberry32): the same documents on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCALARS = [
  '1', '0x1F', '0o17', '017', '1.5', '1e3', '.inf', '-.Inf', '.nan', 'true', 'False', 'yes', 'null', '~', 'Null', '', 'x',
  'a b', 'a:b', 'a #b', 'a#b', '"q"', "'s'", '"e\\tx"', '-', '- x', ': x', '? x', '[a, b]', '{a: 1}', '[]', '{}',
  '|\n  blk', '>-\n  f\n  g', '|\n  a\n\n  b\n', '&a x', '*a', '!!str 1', '!t x', '"multi\n  line"', 'plain\n  cont',
  '1_0', '+1', '-0', '12.', '.5', 'x: y', '[a: 1]', '{a}', 'a,b', '"', "'", '@x', '`x', '#c', 'é', '00', '1:2',
  '[a, [b, {c: d}]]', '{a: [1, 2], b: {}}',
];
const KEYS = ['a', 'b', 'c', 'd', '"q"', "'s'", '1', 'true', '~', 'a b', 'a/b', 'x~y', '? k', '[k]', '-k', 'k:', '__proto__'];

/** A random block document of up to three levels, most of it valid YAML, some of it not. */
function document(next: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const block = (depth: number, indent: number): string => {
    const pad = ' '.repeat(indent);
    const sequence = next() < 0.4;
    let out = '';
    for (let count = 1 + Math.floor(next() * 3); count > 0; count--) {
      const head = sequence ? pad + pick(['- ', '-  ', '-']) : pad + pick(KEYS) + pick([':', ': ', ':  ', ' :']);
      if (depth > 0 && next() < 0.35) out += `${head.trimEnd()}${pick(['', ' # c'])}\n${block(depth - 1, indent + pick([0, 1, 2, 2, 4]))}`;
      else out += `${head}${pick(SCALARS)}${pick(['', '', ' # c', '  ', '\t'])}\n`;
      if (next() < 0.1) out += pick(['\n', '# c\n', `${pad}# c\n`, '   \n']);
    }
    return out;
  };
  return block(3, 0);
}

describe('the YAML fast path', () => {
  it("reads every YAML file of the project and the benchmark's repo itself, as yaml does", () => {
    const files = execFileSync('git', ['-C', PROJECT_ROOT, 'ls-files', '*.yaml', '*.yml'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.ok(files.some((file) => file.startsWith('desired-state/roles/')), files.join(', '));
    const texts = new Map(files.map((file) => [file, readFileSync(join(PROJECT_ROOT, file), 'utf8')]));
    for (const [name, text] of Object.entries({ EDGE_YAML, BASE_ROLE, WEB_ROLE, 'appRole(7)': appRole(7) })) texts.set(`bench ${name}`, text);
    const verdicts = [...texts].map(([file, text]) => [file, compare(text)]);
    assert.deepEqual(verdicts.filter(([, verdict]) => verdict !== 'same'), []);
  });

  it("resolves plain scalars by yaml's core schema, not js-yaml's", () => {
    const value = readFast('a: yes\nb: 0o17\nc: 017\nd: .inf\ne: 1_000\nf: ~\ng: True\nh: 2001-12-14\ni: <<\n')?.value;
    assert.deepEqual(value, { a: 'yes', b: 15, c: 17, d: Infinity, e: '1_000', f: null, g: true, h: '2001-12-14', i: '<<' });
    assert.deepEqual(differences(['a: 0x1f\nb: -0\nc: +12\nd: 12.\ne: .NaN\nf: 9007199254740993\ng: 1e3\nh: 0b101\n']), []);
  });

  it('gives each node the line yaml gives it: values, items, empty values, flow items, after comments', () => {
    const text = '# head\nname: x\nempty:\nlist:\n  # lead\n  - a\n  -\n    k: v\nflow: [1,\n  2]\nnext:\n  b: 1\n';
    assert.deepEqual(readFast(text)?.lines, { '': 2, '/name': 2, '/empty': 3, '/list': 6, '/list/0': 6, '/list/1': 8, '/list/1/k': 8, '/flow': 9, '/flow/0': 9, '/flow/1': 10, '/next': 12, '/next/b': 12 });
    assert.equal(compare(text), 'same');
  });

  it('hands back what it cannot vouch for', () => {
    const handed = [
      '%YAML 1.1\n---\na: yes\n', // another schema
      'a: &x 1\nb: *x\n', // anchors and aliases
      'a: !!str 1\n', // explicit tags
      'a: ! x\n',
      'a:\n\tb: 1\n', // tabs in indentation
      'a: 1\rb: 2\n', // lone carriage returns
      'a: "multi\n  line"\n', // quoted scalars over several lines
      '? [a]\n: b\n', // collection keys
      '~: 1\n', // null keys
      `${'k'.repeat(1100)}: 1\n`, // implicit keys yaml refuses
      '', // empty documents
      '# only a comment\n',
      'a: 1\na: 2\n', // what js-yaml rejects (yaml words the problem)
      'a: b: c\n',
    ];
    assert.deepEqual(handed.map((text) => [text.slice(0, 40), compare(text)]).filter(([, verdict]) => verdict !== 'handed-back'), []);
  });

  it('never reads a generated document otherwise than yaml, and reads a good part of them', () => {
    const next = random(20261201);
    const texts = Array.from({ length: 4000 }, () => document(next));
    assert.deepEqual(differences(texts).slice(0, 5), []);
    const read = texts.filter((text) => readFast(text) !== undefined).length;
    assert.ok(read > texts.length / 5, `read ${read} of ${texts.length}`);
  });
});
