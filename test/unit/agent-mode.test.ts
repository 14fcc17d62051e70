/** How the agent tells the worker about a run: a drift report never reports a revision, so it absorbs no webhook. */
import assert from 'node:assert/strict';
import { reportedRequest, runMode } from '../../reconciler/agent/agent.js';
import type { HostConfig } from '../../reconciler/config/host-config.js';

describe('agent run mode', () => {
  const reportPolicy = { drift: { policy: 'report' } } as unknown as HostConfig;

  it('keeps a drift report from reporting its revision, while every applying run reports it', () => {
    const told: string[] = [];
    const request = { signal: new AbortController().signal, onRevision: (revision: string) => told.push(revision) };
    const report = runMode(reportPolicy, ['drift /etc/caddy/Caddyfile']);
    assert.equal(report, 'report');
    reportedRequest(report, request).onRevision('a'.repeat(40));
    assert.deepEqual(told, []);
    const applying = runMode(reportPolicy, ['drift /etc/caddy/Caddyfile', 'webhook d-1 bbbbbbbbbbbb']);
    assert.equal(applying, 'apply-new');
    reportedRequest(applying, request).onRevision('b'.repeat(40));
    assert.deepEqual(told, ['b'.repeat(40)]);
  });
});
