/** Imports only go down the floors of test/helpers/layers.ts, and no files import each other in a cycle. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkLayers, layerOf, LAYERS, readModules } from '../helpers/layers.js';
import { PROJECT_ROOT } from '../helpers/paths.js';

describe('layering', () => {
  const modules = readModules(PROJECT_ROOT);

  it('finds the modules of every floor', () => {
    for (const entries of LAYERS) {
      for (const entry of entries) {
        const present = [...modules.keys()].some((path) => (entry.endsWith('/') ? path.startsWith(entry) : path === entry));
        assert.ok(present, `${entry} is listed as a floor but holds no module`);
      }
    }
  });

  it('has every import of reconciler/, renderers/ and hooks/ point to its own floor or one below', () => {
    const problems = checkLayers(modules).map((v) => `${v.from} → ${v.to}: ${v.reason}`);
    assert.deepEqual(problems, []);
  });

  it('keeps the top of reconciler/ to the spine', () => {
    const top = readdirSync(join(PROJECT_ROOT, 'reconciler')).filter((name) => name.endsWith('.ts'));
    assert.ok(top.length <= 8, `reconciler/ has ${top.length} files at its top: ${top.join(', ')}`);
  });

  it('refuses a deliberate upward import', () => {
    const tampered = new Map(modules);
    const path = 'reconciler/host/host.ts';
    tampered.set(path, `import { planHost } from '../stages/plan.js';\n${modules.get(path)}`);
    const upward = checkLayers(tampered).filter((v) => v.reason.startsWith('imports upward'));
    assert.deepEqual(
      upward.map((v) => [v.from, v.to]),
      [[path, 'reconciler/stages/plan.ts']],
    );
  });

  it('refuses type-only, re-exported and dynamic upward imports alike', () => {
    const sources = [
      `import type { Plan } from '../reconcile.js';`,
      `export { runStages } from '../pipeline.js';`,
      `const cli = await import('../cli/main.js');`,
    ];
    for (const source of sources) {
      const violations = checkLayers(new Map([['reconciler/state/probe.ts', source]]));
      assert.equal(violations.length, 1, source);
      assert.match(violations[0]?.reason ?? '', /upward/);
    }
  });

  it('refuses two files that import each other, even on one floor', () => {
    const violations = checkLayers(
      new Map([
        ['reconciler/state/a.ts', `import { b } from './b.js';`],
        ['reconciler/state/b.ts', `import type { A } from './a.js';`],
      ]),
    );
    assert.deepEqual(
      violations.map((v) => v.reason),
      ['import cycle: reconciler/state/a.ts → reconciler/state/b.ts → reconciler/state/a.ts'],
    );
  });

  it('places a module in the most specific floor that names it', () => {
    assert.equal(layerOf('reconciler/errors.ts'), 0);
    assert.equal(layerOf('reconciler/cli/main.ts'), LAYERS.length - 1);
    assert.equal(layerOf('reconciler/unlisted.ts'), undefined);
  });
});
