/** The agent's own systemd units pass the same validator the repo's units do. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stageFiles } from '../../reconciler/stages/validate.js';
import { systemdUnitRenderer } from '../../renderers/systemd-unit/index.js';
import type { RenderedFile } from '../../renderers/types.js';
import { PROJECT_ROOT } from '../helpers/paths.js';

describe('the agent\'s own units (systemd/)', () => {
  it('pass systemd-analyze verify with no warning', async () => {
    const names = ['edge-reconciler.service', 'edge-reconciler-apply.service', 'edge-reconciler-apply.timer'];
    const files: RenderedFile[] = await Promise.all(
      names.map(async (name) => ({
        path: `/etc/systemd/system/${name}`,
        content: await readFile(join(PROJECT_ROOT, 'systemd', name), 'utf8'),
        mode: 0o644,
        owner: 'root',
        group: 'root',
        kind: 'systemd-unit' as const,
        resource: `agent/systemd-unit/${name}`,
        source: { file: `systemd/${name}` },
        sensitive: false,
        secrets: [],
        adopt: false,
        unit: { unit: name, dropIn: false, enable: true, start: true, environmentFiles: [], restartOn: [] },
      })),
    );
    const stagingDir = await mkdtemp(join(tmpdir(), 'edge-agent-units-'));
    try {
      await stageFiles(stagingDir, files);
      const problems = await systemdUnitRenderer.validate({
        files,
        allFiles: files,
        stagingDir,
        guards: { allowManagementCut: false, allowSshFromAnywhere: false, managementInterface: 'tailscale0' },
        externalExecPrefixes: ['/usr/bin/edge-reconciler'],
      });
      assert.deepEqual(problems, []);
    } finally {
      await rm(stagingDir, { recursive: true, force: true });
    }
  });

  it('send stdout and stderr to the journal, which reads each line\'s <N> priority prefix (docs/logs.md)', async () => {
    for (const name of ['edge-reconciler.service', 'edge-reconciler-apply.service']) {
      const unit = await readFile(join(PROJECT_ROOT, 'systemd', name), 'utf8');
      for (const line of ['StandardOutput=journal', 'StandardError=journal', 'SyslogLevelPrefix=yes', 'SyslogIdentifier=edge-reconciler']) {
        assert.match(unit, new RegExp(`^${line}$`, 'm'), `${name} lacks ${line}`);
      }
    }
  });
});
