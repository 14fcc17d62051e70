/** The host adapter creates missing folders 0755 whatever the umask (the agent's unit runs with UMask=0077). */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../../reconciler/host/host.js';

describe('host: folders it creates', () => {
  it('are 0755 under a 0077 umask, so a service user can read its config (prometheus under /etc/prometheus)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'edge-umask-'));
    const previous = process.umask(0o077);
    try {
      const host = new Host(root);
      await host.writeAtomic('/etc/prometheus/edge-reconciler/prometheus.yml', 'global: {}\n', 0o644, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
      for (const dir of ['etc', 'etc/prometheus', 'etc/prometheus/edge-reconciler']) {
        assert.equal((await stat(join(root, dir))).mode & 0o777, 0o755, dir);
      }
      assert.equal((await stat(join(root, 'etc/prometheus/edge-reconciler/prometheus.yml'))).mode & 0o777, 0o644);
    } finally {
      process.umask(previous);
      await rm(root, { recursive: true, force: true });
    }
  });
});
