/**
 * The reconcile worker: one run at a time, triggers coalesced into one queued run, exponential backoff that holds
 * polls back but not people, webhook hints that never cancel and are absorbed by a run of the same commit, and a
 * stop that aborts only after the grace period.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { startPolling } from '../../reconciler/triggers/poll.js';
import { MAX_REASONS, RunCancelledError, type RunEndEvent, type RunReport, type RunRequest } from '../../reconciler/triggers/run-request.js';
import { ReconcileWorker } from '../../reconciler/triggers/worker.js';

const SHA_A = 'a'.repeat(40);
const SHA_B = 'b'.repeat(40);

/** A fake reconcile whose runs each wait until the test releases them (or their signal is aborted). */
class FakeRuns {
  readonly requests: RunRequest[] = [];
  private releases: ((report: Partial<RunReport>) => void)[] = [];
  private waiters: (() => void)[] = [];

  readonly run = (request: RunRequest): Promise<RunReport> => {
    this.requests.push(request);
    for (const wake of this.waiters.splice(0)) wake();
    return new Promise((resolve) => {
      const finish = (report: Partial<RunReport>): void => resolve({ result: 'applied', durationMs: 1, ...report });
      this.releases.push(finish);
      const onAbort = (): void => {
        this.releases = this.releases.filter((other) => other !== finish);
        finish({ result: 'failed', retry: 'transient' });
      };
      request.signal.addEventListener('abort', onAbort, { once: true });
    });
  };

  /** Resolves once `count` runs have started. */
  async started(count: number): Promise<RunRequest> {
    while (this.requests.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.requests[count - 1] as RunRequest;
  }

  /** Ends the oldest unreleased run with the given report. */
  release(report: Partial<RunReport> = {}): void {
    const finish = this.releases.shift();
    assert.ok(finish, 'no run to release');
    finish(report);
  }
}

describe('reconcile worker', () => {
  it('runs one trigger at once and coalesces every trigger during a run into exactly one more run', async () => {
    const runs = new FakeRuns();
    const worker = new ReconcileWorker({ run: runs.run });
    assert.equal(worker.trigger('first'), 'started');
    await runs.started(1);
    for (let i = 0; i < 10; i += 1) assert.equal(worker.trigger(`burst ${i}`), 'queued');
    assert.equal(worker.snapshot().queued, true);
    runs.release();
    const second = await runs.started(2);
    assert.deepEqual(second.reasons, Array.from({ length: 10 }, (_, i) => `burst ${i}`));
    runs.release();
    await worker.idle();
    assert.equal(runs.requests.length, 2);
    assert.equal(worker.snapshot().runs, 2);
    assert.equal(worker.snapshot().queued, false);
  });

  it('summarizes the reasons of a burst past the cap and merges force', async () => {
    const runs = new FakeRuns();
    const worker = new ReconcileWorker({ run: runs.run });
    worker.trigger('first');
    await runs.started(1);
    for (let i = 0; i < 500; i += 1) worker.trigger(`webhook ${i}`, { force: i === 250 });
    runs.release();
    const second = await runs.started(2);
    assert.equal(second.reasons.length, MAX_REASONS + 1);
    assert.equal(second.reasons.at(-1), `(and ${500 - MAX_REASONS} more)`);
    assert.equal(second.force, true);
    assert.equal(runs.requests[0]?.force, false);
    runs.release();
    await worker.idle();
  });

  it('holds polls back after a transient failure while manual triggers run at once, and a success resets it', async () => {
    const runs = new FakeRuns();
    // A long backoff: the automatic retry never comes during the test.
    const worker = new ReconcileWorker({ run: runs.run, initialBackoffMs: 600_000, maxBackoffMs: 600_000, random: () => 0 });
    const ends: RunEndEvent[] = [];
    worker.on('run-end', (event) => ends.push(event));
    worker.trigger('startup');
    await runs.started(1);
    runs.release({ result: 'failed', retry: 'transient' });
    await worker.idle();
    assert.equal(ends[0]?.backoffMs, 300_000);
    assert.equal(worker.isBackingOff(), true);
    assert.equal(worker.snapshot().state, 'backing-off');
    assert.equal(worker.snapshot().failures, 1);

    assert.equal(worker.trigger('poll 1', { automatic: true }), 'deferred');
    assert.equal(worker.trigger('poll 2', { automatic: true }), 'deferred');
    assert.equal(runs.requests.length, 1);

    assert.equal(worker.trigger('manual'), 'started');
    const manual = await runs.started(2);
    // The manual run takes the deferred polls and the pending retry with it.
    assert.deepEqual(manual.reasons, ['retry after 1 transient failure', 'poll 1', 'poll 2', 'manual']);
    runs.release({ result: 'applied' });
    await worker.idle();
    assert.equal(worker.isBackingOff(), false);
    assert.equal(worker.snapshot().failures, 0);
    assert.equal(worker.trigger('poll 3', { automatic: true }), 'started');
    await runs.started(3);
    runs.release();
    await worker.idle();
  });

  it('retries by itself after transient failures, doubling the delay, until a run succeeds', async () => {
    const runs = new FakeRuns();
    const worker = new ReconcileWorker({ run: runs.run, initialBackoffMs: 8, maxBackoffMs: 20, random: () => 0.999999 });
    const ends: RunEndEvent[] = [];
    worker.on('run-end', (event) => ends.push(event));
    worker.trigger('startup');
    for (let n = 1; n <= 3; n += 1) {
      await runs.started(n);
      runs.release({ result: 'failed', retry: 'transient' });
    }
    const fourth = await runs.started(4);
    assert.deepEqual(fourth.reasons, ['retry after 3 transient failures']);
    runs.release({ result: 'applied' });
    await worker.idle();
    // Delays are min(max, initial * 2^(n-1)), between half and all of it: 8, 16, then capped at 20.
    assert.deepEqual(
      ends.map((event) => event.backoffMs),
      [8, 16, 20, undefined],
    );
    assert.equal(worker.isBackingOff(), false);
  });

  it('does not back off after failures that a retry cannot fix', async () => {
    const runs = new FakeRuns();
    const worker = new ReconcileWorker({ run: runs.run, initialBackoffMs: 600_000 });
    for (const retry of ['invalid', 'refused', 'stuck'] as const) {
      const count = runs.requests.length + 1;
      assert.equal(worker.trigger('poll', { automatic: true }), 'started');
      await runs.started(count);
      runs.release({ result: 'failed', retry });
      await worker.idle();
      assert.equal(worker.isBackingOff(), false, retry);
    }
  });

  it('never cancels a running run on a webhook hint, whatever commit it announces', async () => {
    const runs = new FakeRuns();
    const worker = new ReconcileWorker({ run: runs.run, initialBackoffMs: 600_000 });
    worker.trigger('startup');
    const first = await runs.started(1);
    // Announced before the run knows its revision, then after: an older, replayed or newer commit alike.
    assert.equal(worker.trigger('webhook early', { newerRevisionHint: SHA_B }), 'queued');
    first.onRevision(SHA_A);
    for (let i = 0; i < 20; i += 1) assert.equal(worker.trigger(`webhook replay ${i}`, { newerRevisionHint: SHA_B }), 'queued');
    assert.equal(first.signal.aborted, false);
    runs.release({ revision: SHA_A });
    const second = await runs.started(2);
    assert.equal(second.reasons[0], 'webhook early');
    assert.equal(worker.snapshot().lastRun?.result, 'applied');
    assert.equal(worker.snapshot().lastRun?.cancelled, undefined);
    runs.release();
    await worker.idle();
    assert.equal(runs.requests.length, 2);
  });

  it('absorbs webhooks announcing the commit the running run resolved, queued before or after it knew it', async () => {
    const runs = new FakeRuns();
    const worker = new ReconcileWorker({ run: runs.run });
    worker.trigger('startup');
    const first = await runs.started(1);
    assert.equal(worker.trigger('webhook early', { newerRevisionHint: SHA_A }), 'queued');
    first.onRevision(SHA_A);
    assert.equal(worker.snapshot().queued, false, 'the queued hint for the same commit is absorbed');
    assert.equal(worker.trigger('webhook same', { newerRevisionHint: SHA_A }), 'absorbed');
    assert.equal(worker.trigger('webhook short', { newerRevisionHint: SHA_A.slice(0, 12).toUpperCase() }), 'absorbed');
    runs.release({ revision: SHA_A });
    await worker.idle();
    assert.equal(runs.requests.length, 1);
  });

  it('absorbs late webhooks for a commit a finished run settled, but retries after a transient failure', async () => {
    const runs = new FakeRuns();
    const worker = new ReconcileWorker({ run: runs.run, initialBackoffMs: 600_000 });
    worker.trigger('startup');
    (await runs.started(1)).onRevision(SHA_A);
    runs.release({ result: 'unchanged', revision: SHA_A });
    await worker.idle();
    assert.equal(worker.trigger('webhook late', { newerRevisionHint: SHA_A }), 'absorbed');
    assert.equal(worker.trigger('webhook newer', { newerRevisionHint: SHA_B }), 'started');
    (await runs.started(2)).onRevision(SHA_B);
    runs.release({ result: 'failed', retry: 'transient', revision: SHA_B });
    await worker.idle();
    assert.equal(worker.trigger('webhook again', { newerRevisionHint: SHA_B }), 'started', 'a transient failure settles nothing');
    (await runs.started(3)).onRevision(SHA_B);
    runs.release({ revision: SHA_B });
    await worker.idle();
    assert.equal(runs.requests.length, 3);
  });

  it('keeps plain triggers queued when the hints beside them are absorbed, and counts only what is left', async () => {
    const runs = new FakeRuns();
    const worker = new ReconcileWorker({ run: runs.run });
    worker.trigger('startup');
    const first = await runs.started(1);
    for (let i = 0; i < 30; i += 1) worker.trigger(`webhook ${i}`, { newerRevisionHint: SHA_A });
    worker.trigger('manual (now)', { force: true });
    worker.trigger('forced hint', { newerRevisionHint: SHA_A, force: true });
    first.onRevision(SHA_A);
    runs.release({ revision: SHA_A });
    const second = await runs.started(2);
    assert.deepEqual(second.reasons, ['manual (now)', 'forced hint']);
    assert.equal(second.force, true);
    runs.release();
    await worker.idle();
  });

  it('runs a burst of webhooks for one commit, of any length, at most twice', async () => {
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const requests: RunRequest[] = [];
    const worker = new ReconcileWorker({
      run: async (request) => {
        requests.push(request);
        await turn();
        request.onRevision(SHA_A);
        for (let i = 0; i < 3; i += 1) await turn();
        return { result: 'applied', revision: SHA_A, durationMs: 1 };
      },
    });
    // Deliveries spread over many runs' worth of time: before, between and after runs.
    for (let i = 0; i < 500; i += 1) {
      worker.trigger(`webhook ${i}`, { newerRevisionHint: SHA_A });
      if (i % 7 === 0) await turn();
    }
    await worker.idle();
    assert.ok(requests.length <= 2, `${requests.length} runs`);
  });

  it('lets the running run finish within the grace period on stop, and refuses triggers afterwards', async () => {
    const runs = new FakeRuns();
    const worker = new ReconcileWorker({ run: runs.run });
    worker.trigger('startup');
    const first = await runs.started(1);
    worker.trigger('queued behind');
    const stopped = worker.stop(60_000);
    assert.equal(worker.snapshot().state, 'stopping');
    assert.equal(worker.trigger('late'), 'refused');
    runs.release({ result: 'applied' });
    await stopped;
    assert.equal(first.signal.aborted, false);
    assert.equal(runs.requests.length, 1, 'the queued run is dropped');
    assert.equal(worker.snapshot().state, 'stopped');
  });

  it('aborts the running run once the grace period is over', async () => {
    const runs = new FakeRuns();
    const worker = new ReconcileWorker({ run: runs.run });
    const cancelled = once(worker, 'cancel');
    worker.trigger('startup');
    const first = await runs.started(1);
    await worker.stop(10);
    assert.equal(first.signal.aborted, true);
    const [reason] = (await cancelled) as [RunCancelledError];
    assert.equal(reason.why, 'shutdown');
    assert.equal(worker.snapshot().lastRun?.cancelled, 'shutdown');
  });

  it('treats a run that throws as a transient failure', async () => {
    const worker = new ReconcileWorker({
      run: () => Promise.reject(new Error('boom')),
      initialBackoffMs: 600_000,
    });
    const ended = once(worker, 'run-end');
    worker.trigger('startup');
    const [event] = (await ended) as [RunEndEvent];
    assert.equal(event.report.retry, 'transient');
    assert.equal(worker.isBackingOff(), true);
    await worker.stop(0);
  });
});

describe('poller', () => {
  it('ticks on a timer chain with jitter until stopped', async () => {
    const ticks: number[] = [];
    let poller: ReturnType<typeof startPolling> | undefined;
    await new Promise<void>((resolve) => {
      poller = startPolling({
        intervalMs: 2,
        jitterMs: 3,
        trigger: (tick) => {
          ticks.push(tick);
          if (tick === 3) resolve();
        },
      });
    });
    poller?.stop();
    const seen = ticks.length;
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(ticks.slice(0, 3), [1, 2, 3]);
    assert.equal(ticks.length, seen, 'no tick after stop');
  });

  it('goes on polling when a trigger throws', async () => {
    const errors: unknown[] = [];
    let poller: ReturnType<typeof startPolling> | undefined;
    await new Promise<void>((resolve) => {
      poller = startPolling({
        intervalMs: 1,
        jitterMs: 0,
        onError: (error) => errors.push(error),
        trigger: (tick) => {
          if (tick === 3) resolve();
          else throw new Error(`tick ${tick} failed`);
        },
      });
    });
    poller?.stop();
    assert.equal(errors.length, 2);
  });

  it('refuses a non-positive interval', () => {
    assert.throws(() => startPolling({ intervalMs: 0, trigger: () => {} }), /poll interval must be positive, got 0 ms/);
  });
});
