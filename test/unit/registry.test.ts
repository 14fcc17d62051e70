/** The renderer registry lists exactly the folders under renderers/, alphabetically, each with the same files. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RENDERERS } from '../../renderers/registry.js';
import { PROJECT_ROOT } from '../helpers/paths.js';

const REQUIRED_FILES = ['README.md', 'index.ts', 'render.ts', 'schema.ts', 'validate.ts'];

describe('renderer registry', () => {
  const folders = readdirSync(join(PROJECT_ROOT, 'renderers'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();

  it('lists one renderer per folder, alphabetically', () => {
    assert.deepEqual(
      RENDERERS.map((renderer) => renderer.kind),
      folders,
    );
  });

  for (const folder of folders) {
    it(`gives ${folder} the same files as every kind`, () => {
      const files = readdirSync(join(PROJECT_ROOT, 'renderers', folder));
      for (const file of REQUIRED_FILES) assert.ok(files.includes(file), `renderers/${folder}/${file} is missing`);
    });
  }
});
