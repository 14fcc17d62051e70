/** /metrics shows each app's live release and the duration of its build; a switch replaces the old series. */
import assert from 'node:assert/strict';
import { AgentMetrics } from '../../reconciler/agent/metrics.js';

const V1 = '1'.repeat(40);
const V2 = '2'.repeat(40);

describe('app release metrics', () => {
  it('exports edge_reconciler_app_release_info{app,sha} 1 and the last build duration per app', async () => {
    const metrics = new AgentMetrics();
    metrics.setApps([
      { app: 'lod', sha: V1, builtAt: '2026-12-01T00:00:00Z', buildSeconds: 1.5 },
      { app: 'model-gateway', sha: V2, ref: 'main', builtAt: '2026-12-01T00:00:00Z', buildSeconds: 0 },
    ]);
    const text = await metrics.render();
    assert.match(text, new RegExp(`edge_reconciler_app_release_info\\{app="lod",sha="${V1}"\\} 1`));
    assert.match(text, new RegExp(`edge_reconciler_app_release_info\\{app="model-gateway",sha="${V2}"\\} 1`));
    assert.match(text, /edge_reconciler_app_build_duration_seconds\{app="lod"\} 1\.5/);
  });

  it('drops the series of the release that is no longer live', async () => {
    const metrics = new AgentMetrics();
    metrics.setApps([{ app: 'lod', sha: V1, builtAt: '', buildSeconds: 1 }]);
    metrics.setApps([{ app: 'lod', sha: V2, builtAt: '', buildSeconds: 2 }]);
    const text = await metrics.render();
    assert.ok(!text.includes(V1), 'the old release is gone');
    assert.match(text, new RegExp(`sha="${V2}"\\} 1`));
  });
});
