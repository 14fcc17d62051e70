/** The JSON Schemas in desired-state/schema are the ones the loader uses, and they accept the example repo. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allSchemas } from '../../reconciler/config/repo-schemas.js';
import { EXAMPLE_REPO } from '../helpers/paths.js';

describe('desired-state schemas', () => {
  for (const [name, schema] of Object.entries(allSchemas())) {
    it(`desired-state/schema/${name} is up to date (npm run schemas)`, () => {
      const written = JSON.parse(readFileSync(join(EXAMPLE_REPO, 'schema', name), 'utf8')) as unknown;
      assert.deepEqual(written, JSON.parse(JSON.stringify(schema)));
    });
  }

  it('every example file names its schema for editors', () => {
    for (const file of ['edge.yaml', 'hosts/lod-prod.yaml', 'roles/lod/role.yaml']) {
      const text = readFileSync(join(EXAMPLE_REPO, file), 'utf8');
      assert.match(text, /^# yaml-language-server: \$schema=\S+\.schema\.json$/m, file);
    }
  });
});
