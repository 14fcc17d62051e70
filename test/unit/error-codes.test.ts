/** Every error code the source can produce is documented in docs/errors.md, and the page lists no dead code. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/paths.js';

function sourceFiles(dir: string): string[] {
  return readdirSync(join(PROJECT_ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(PROJECT_ROOT, dir, file));
}

/** Upper-case strings the pattern also meets that are not error codes. */
const NOT_CODES = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE']);

const CODE = /(?:code: |new EdgeError\(|[(,] )'([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)'/g;

describe('error codes', () => {
  const used = new Set<string>();
  for (const file of [...sourceFiles('reconciler'), ...sourceFiles('renderers'), ...sourceFiles('hooks')]) {
    for (const match of readFileSync(file, 'utf8').matchAll(CODE)) if (match[1] && !NOT_CODES.has(match[1])) used.add(match[1]);
  }
  const page = readFileSync(join(PROJECT_ROOT, 'docs', 'errors.md'), 'utf8');
  const documented = new Set([...page.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1] as string));

  it('finds the codes in the source', () => {
    assert.ok(used.size >= 40, `only ${used.size} codes found: the pattern no longer matches the source`);
  });

  it('documents every code the source uses', () => {
    const missing = [...used].filter((code) => !documented.has(code)).sort();
    assert.deepEqual(missing, []);
  });
});
