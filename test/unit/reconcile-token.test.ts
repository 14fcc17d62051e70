/** The reconcile token file: one token, readable by its owner only; anything else is refused naming the file. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readReconcileToken } from '../../reconciler/cli/reconcile-token.js';

describe('reconcile token file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-token-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads one token from an owner-only file, trimming the newline', async () => {
    const file = join(dir, 'good');
    await writeFile(file, 'rt-9f2c4e1a7b3d5f60\n', { mode: 0o600 });
    assert.equal(await readReconcileToken(file), 'rt-9f2c4e1a7b3d5f60');
  });

  it('refuses a file others may read, a missing file, and contents that are not one token', async () => {
    const cases: [string, string | undefined, number, RegExp][] = [
      ['world-readable', 'rt-9f2c4e1a7b3d5f60', 0o644, /may be read by group or others \(mode 644\)/],
      ['missing', undefined, 0o600, /cannot read the reconcile token file/],
      ['empty', '\n', 0o600, /must hold one token/],
      ['short', 'abc', 0o600, /must hold one token/],
      ['two words', 'rt-9f2c4e1a 7b3d5f60aa', 0o600, /must hold one token/],
    ];
    for (const [name, content, mode, message] of cases) {
      const file = join(dir, name);
      if (content !== undefined) await writeFile(file, content, { mode });
      await assert.rejects(readReconcileToken(file), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'RECONCILE_TOKEN_FILE', name);
        assert.match(error.message, message, name);
        assert.ok(error.message.includes(file), `${name}: names the file`);
        if (content?.trim()) assert.ok(!error.message.includes(content.trim()), `${name}: echoes the content`);
        return true;
      });
    }
  });
});
