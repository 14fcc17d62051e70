/** The delivery log: a delivery id counts once, and memory stays bounded by forgetting the oldest ids first. */
import assert from 'node:assert/strict';
import { DeliveryLog } from '../../reconciler/triggers/delivery-log.js';

describe('delivery log', () => {
  it('reports a delivery id seen before, per forge', () => {
    const log = new DeliveryLog();
    assert.equal(log.record('github', 'd-1'), false);
    assert.equal(log.record('github', 'd-1'), true);
    assert.equal(log.record('gitea', 'd-1'), false);
  });

  it('forgets the oldest ids past its capacity, so a flood of fresh ids costs bounded memory', () => {
    const log = new DeliveryLog(3);
    for (let i = 0; i < 10_000; i += 1) log.record('github', `flood-${i}`);
    assert.equal(log.size, 3);
    assert.equal(log.record('github', 'flood-9999'), true);
    assert.equal(log.record('github', 'flood-0'), false);
  });
});
