import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { ExecRunner, RecordingRunner, type CommandOptions, type CommandResult, type CommandRunner } from '../../reconciler/host/host.js';
import { runHealthChecks, type HealthOptions } from '../../reconciler/host/health.js';
import { judgeUnit, parseSystemctlShow } from '../../reconciler/host/health-probes.js';
import type { HealthCheckSpec } from '../../reconciler/model.js';
import { redactorFor } from '../../reconciler/secrets/redact.js';

function check(name: string, type: HealthCheckSpec['type'], fields: Record<string, unknown>): HealthCheckSpec {
  return { name, type, spec: { name, type, ...fields }, source: { file: 'roles/app/role.yaml', path: `/health/0` } };
}

/** A runner that answers each command from a script of results, in order; the last one repeats. */
class ScriptedRunner implements CommandRunner {
  readonly dryRun = false;
  readonly calls: string[][] = [];
  constructor(private readonly answers: Array<Partial<CommandResult> | ((options?: CommandOptions) => Promise<CommandResult>)>) {}

  async run(argv: readonly string[], options?: CommandOptions): Promise<CommandResult> {
    this.calls.push([...argv]);
    const answer = this.answers[Math.min(this.calls.length - 1, this.answers.length - 1)];
    if (typeof answer === 'function') return answer(options);
    return { exitCode: 0, stdout: '', stderr: '', timedOut: false, ...answer };
  }
}

const show = (properties: Record<string, string | number>): Partial<CommandResult> => ({
  stdout: Object.entries({ LoadState: 'loaded', ...properties }).map(([key, value]) => `${key}=${value}`).join('\n') + '\n',
});
const RUNNING = show({ Type: 'simple', ActiveState: 'active', SubState: 'running', Result: 'success', ExecMainStatus: 0 });

/** A virtual clock: sleeps advance it and return at once, so retries and deadlines take no real time. */
function virtualClock(): Pick<HealthOptions, 'now' | 'sleep'> & { elapsed: () => number } {
  let time = 1_000_000;
  const start = time;
  return {
    now: () => time,
    sleep: async (ms: number) => {
      time += ms;
      await Promise.resolve();
    },
    elapsed: () => time - start,
  };
}

function options(runner: CommandRunner, extra: Partial<HealthOptions> = {}): HealthOptions {
  const clock = virtualClock();
  return { runner, deadlineMs: 60_000, intervalMs: 2_000, standby: false, now: clock.now, sleep: clock.sleep, ...extra };
}

async function listenHttp(handler: Parameters<typeof createHttpServer>[1]): Promise<{ server: HttpServer; url: string }> {
  const server = createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function close(server: HttpServer | TcpServer): Promise<void> {
  (server as HttpServer).closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('health checks', () => {
  describe('unit', () => {
    it('is healthy when the unit is active (running) and asks systemctl for the properties it reads', async () => {
      const runner = new ScriptedRunner([RUNNING]);
      const report = await runHealthChecks([check('app', 'unit', { unit: 'app.service' })], options(runner));
      assert.equal(report.healthy, true);
      assert.equal(report.results[0]?.status, 'healthy');
      assert.deepEqual(runner.calls[0], [
        'systemctl',
        'show',
        'app.service',
        '--property=ActiveState,SubState,Result,Type,ExecMainStatus,ExecMainExitTimestampMonotonic,LoadState',
      ]);
    });

    it('counts a oneshot that exited 0 as healthy', async () => {
      const runner = new ScriptedRunner([
        show({ Type: 'oneshot', ActiveState: 'inactive', SubState: 'dead', Result: 'success', ExecMainStatus: 0, ExecMainExitTimestampMonotonic: 123456 }),
      ]);
      const report = await runHealthChecks([check('migrate', 'unit', { unit: 'migrate.service' })], options(runner));
      assert.equal(report.results[0]?.status, 'healthy');
      assert.match(report.results[0]?.message ?? '', /oneshot exited 0/);
    });

    it('does not count a oneshot that never ran as healthy', () => {
      const verdict = judgeUnit('migrate.service', {
        LoadState: 'loaded', Type: 'oneshot', ActiveState: 'inactive', SubState: 'dead', Result: 'success', ExecMainStatus: '0', ExecMainExitTimestampMonotonic: '0',
      });
      assert.equal(verdict.ok, false);
    });

    it('reports a failed unit as unhealthy with its result and exit status', async () => {
      const runner = new ScriptedRunner([
        show({ Type: 'simple', ActiveState: 'failed', SubState: 'failed', Result: 'exit-code', ExecMainStatus: 1 }),
      ]);
      const report = await runHealthChecks([check('app', 'unit', { unit: 'app.service', retries: 1 })], options(runner));
      assert.equal(report.healthy, false);
      assert.equal(report.failed?.status, 'unhealthy');
      assert.equal(report.failed?.attempts, 2);
      assert.match(report.failed?.message ?? '', /^app\.service: failed \(result exit-code, exit status 1\)/);
    });

    it('reports a unit that does not exist as "unit not found"', async () => {
      const runner = new ScriptedRunner([show({ LoadState: 'not-found', ActiveState: 'inactive', SubState: 'dead' })]);
      const report = await runHealthChecks([check('ghost', 'unit', { unit: 'ghost.service', retries: 0 })], options(runner));
      assert.equal(report.results[0]?.status, 'unhealthy');
      assert.equal(report.results[0]?.message, 'ghost.service: unit not found');
    });

    it('treats active (exited) with a failing status as unhealthy', () => {
      const verdict = judgeUnit('x.service', parseSystemctlShow('ActiveState=active\nSubState=exited\nResult=exit-code\nExecMainStatus=3\nLoadState=loaded\n'));
      assert.equal(verdict.ok, false);
      assert.match(verdict.message, /exit status 3/);
    });

    it('waits for an activating unit without using up its retries, until it is active', async () => {
      const activating = show({ Type: 'notify', ActiveState: 'activating', SubState: 'start', Result: 'success', ExecMainStatus: 0 });
      const runner = new ScriptedRunner([activating, activating, activating, activating, activating, RUNNING]);
      const report = await runHealthChecks([check('app', 'unit', { unit: 'app.service', retries: 1 })], options(runner));
      assert.equal(report.results[0]?.status, 'healthy');
      assert.equal(report.results[0]?.attempts, 6);
    });
  });

  describe('retries and deadline', () => {
    it('retries a failing check and stops at the first success', async () => {
      const runner = new ScriptedRunner([{ exitCode: 1, stderr: 'not yet' }, { exitCode: 1, stderr: 'not yet' }, { exitCode: 0 }]);
      const clock = virtualClock();
      const report = await runHealthChecks([check('ready', 'command', { command: ['/bin/ready'] })], options(runner, clock));
      assert.equal(report.results[0]?.status, 'healthy');
      assert.equal(report.results[0]?.attempts, 3);
      assert.equal(runner.calls.length, 3);
      assert.equal(clock.elapsed(), 4_000, 'two pauses of intervalMs');
    });

    it('gives up as unhealthy after `retries` more attempts, with what the last one saw', async () => {
      const runner = new ScriptedRunner([{ exitCode: 2, stderr: 'boom' }]);
      const report = await runHealthChecks([check('ready', 'command', { command: ['/bin/ready'], retries: 2 })], options(runner));
      assert.equal(report.results[0]?.status, 'unhealthy');
      assert.equal(report.results[0]?.attempts, 3);
      assert.match(report.results[0]?.message ?? '', /exit 2: boom/);
    });

    it('ends a check still failing at the deadline as timeout, naming the last attempt', async () => {
      const runner = new ScriptedRunner([{ exitCode: 1, stderr: 'connection refused' }]);
      const clock = virtualClock();
      const report = await runHealthChecks(
        [check('ready', 'command', { command: ['/bin/ready'], retries: 1000 })],
        options(runner, { ...clock, deadlineMs: 10_000, intervalMs: 3_000 }),
      );
      const result = report.results[0];
      assert.equal(result?.status, 'timeout');
      assert.match(result?.message ?? '', /^deadline of 10s passed; last attempt: \/bin\/ready: exit 1: connection refused/);
      assert.equal(result?.attempts, 4);
      assert.equal(report.healthy, false);
      assert.equal(report.failed, result);
      assert.equal(clock.elapsed(), 10_000);
    });

    it('clips an attempt\'s timeout to what is left of the deadline', async () => {
      const seen: number[] = [];
      const runner = new ScriptedRunner([
        async (options) => {
          seen.push(options?.timeoutMs ?? -1);
          return { exitCode: 1, stdout: '', stderr: '', timedOut: false };
        },
      ]);
      await runHealthChecks(
        [check('ready', 'command', { command: ['/bin/ready'], timeoutSeconds: 5, retries: 5 })],
        options(runner, { deadlineMs: 7_000, intervalMs: 4_000 }),
      );
      assert.deepEqual(seen, [5_000, 3_000]);
    });

    it('runs checks concurrently: the report waits for the slowest only', async () => {
      let running = 0;
      let peak = 0;
      const slow = async (): Promise<CommandResult> => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 50));
        running--;
        return { exitCode: 0, stdout: '', stderr: '', timedOut: false };
      };
      const runner = new ScriptedRunner([slow]);
      const checks = ['a', 'b', 'c'].map((name) => check(name, 'command', { command: ['/bin/true'] }));
      const report = await runHealthChecks(checks, options(runner));
      assert.equal(peak, 3);
      assert.deepEqual(report.results.map((result) => result.name), ['a', 'b', 'c']);
    });

    it('reports the worst failure: unhealthy before timeout', async () => {
      const runner = new ScriptedRunner([{ exitCode: 1 }]);
      const report = await runHealthChecks(
        [
          check('slow', 'command', { command: ['/bin/slow'], retries: 1000 }),
          check('broken', 'command', { command: ['/bin/broken'], retries: 0 }),
        ],
        options(runner, { deadlineMs: 5_000 }),
      );
      assert.deepEqual(report.results.map((result) => result.status), ['timeout', 'unhealthy']);
      assert.equal(report.failed?.name, 'broken');
    });
  });

  describe('skips', () => {
    it('skips checks on a standby host unless they say standby: true', async () => {
      const runner = new ScriptedRunner([RUNNING]);
      const report = await runHealthChecks(
        [check('app', 'unit', { unit: 'app.service' }), check('agent', 'unit', { unit: 'agent.service', standby: true })],
        options(runner, { standby: true }),
      );
      assert.deepEqual(report.results.map((result) => result.status), ['skipped', 'healthy']);
      assert.equal(report.healthy, true);
      assert.deepEqual(runner.calls.map((call) => call[2]), ['agent.service']);
    });

    it('skips every check under --dry-activate: nothing was started', async () => {
      const runner = new RecordingRunner();
      const report = await runHealthChecks(
        [check('app', 'unit', { unit: 'app.service' }), check('web', 'http', { url: 'http://127.0.0.1:1/' })],
        options(runner),
      );
      assert.equal(report.healthy, true);
      for (const result of report.results) {
        assert.equal(result.status, 'skipped');
        assert.equal(result.message, 'dry-activate: not checked');
        assert.equal(result.attempts, 0);
      }
      assert.deepEqual(runner.commands, []);
    });
  });

  describe('cancel', () => {
    it('stops waiting promptly when cancelled: remaining checks end as timeout "cancelled"', async () => {
      const controller = new AbortController();
      const hanging = (): Promise<CommandResult> => new Promise(() => undefined);
      const runner = new ScriptedRunner([hanging]);
      const started = Date.now();
      setTimeout(() => controller.abort(), 50);
      const report = await runHealthChecks(
        [check('a', 'command', { command: ['/bin/hang'], timeoutSeconds: 30 }), check('b', 'command', { command: ['/bin/hang'], timeoutSeconds: 30 })],
        { runner, deadlineMs: 60_000, intervalMs: 1_000, standby: false, signal: controller.signal },
      );
      assert.ok(Date.now() - started < 20_000, 'resolved well before the 30 s check timeout');
      assert.deepEqual(report.results.map((result) => [result.status, result.message]), [
        ['timeout', 'cancelled'],
        ['timeout', 'cancelled'],
      ]);
      assert.equal(report.healthy, false);
      assert.equal(report.cancelled, true);
    });

    it('keeps what a check saw before the cancel, and stops a pause between attempts', async () => {
      const controller = new AbortController();
      const runner = new ScriptedRunner([{ exitCode: 1, stderr: 'warming up' }]);
      setTimeout(() => controller.abort(), 50);
      const started = Date.now();
      const report = await runHealthChecks([check('a', 'command', { command: ['/bin/warm'] })], {
        runner,
        deadlineMs: 60_000,
        intervalMs: 30_000,
        standby: false,
        signal: controller.signal,
      });
      assert.ok(Date.now() - started < 20_000, 'did not wait out the 30 s pause');
      assert.equal(report.results[0]?.status, 'timeout');
      assert.equal(report.results[0]?.message, 'cancelled; last attempt: /bin/warm: exit 1: warming up');
    });

    it('resolves at once when the signal is already aborted', async () => {
      const report = await runHealthChecks([check('a', 'command', { command: ['/bin/x'] })], {
        ...options(new ScriptedRunner([{}])),
        signal: AbortSignal.abort(),
      });
      assert.equal(report.results[0]?.message, 'cancelled');
    });
  });

  describe('command', () => {
    it('names the exit code and the last 3 lines of stderr, with secrets redacted', async () => {
      const secret = 'pa55w0rd-s3cret';
      const runner = new ScriptedRunner([{ exitCode: 3, stderr: `line 1\nline 2\nconnecting with ${secret}\nline 4\nrefused\n` }]);
      const report = await runHealthChecks([check('db', 'command', { command: ['/usr/bin/db-ping'], retries: 0 })], {
        ...options(runner),
        redact: redactorFor([secret]),
      });
      const message = report.results[0]?.message ?? '';
      assert.equal(message, '/usr/bin/db-ping: exit 3: connecting with <redacted> | line 4 | refused');
      assert.ok(!JSON.stringify(report).includes(secret));
    });

    it('runs a real command through the ExecRunner', async () => {
      const report = await runHealthChecks(
        [
          check('ok', 'command', { command: ['/bin/sh', '-c', 'exit 0'] }),
          check('bad', 'command', { command: ['/bin/sh', '-c', 'echo nope >&2; exit 4'], retries: 0 }),
        ],
        { runner: new ExecRunner(), deadlineMs: 10_000, intervalMs: 10, standby: false },
      );
      assert.deepEqual(report.results.map((result) => [result.status, result.message]), [
        ['healthy', '/bin/sh: exit 0'],
        ['unhealthy', '/bin/sh: exit 4: nope'],
      ]);
    });
  });

  describe('http', () => {
    let server: HttpServer;
    let url: string;
    let hits = 0;

    before(async () => {
      ({ server, url } = await listenHttp((request, response) => {
        hits++;
        if (request.url === '/ok') response.end('status: ok\n');
        else if (request.url === '/down') response.writeHead(503).end('down');
        else if (request.url === '/flaky') response.writeHead(hits % 3 === 0 ? 200 : 502).end('ok');
        else if (request.url === '/redirect') response.writeHead(302, { location: '/ok' }).end();
        else if (request.url === '/big') response.end('x'.repeat(200 * 1024) + 'needle');
        else if (request.url === '/slow') setTimeout(() => response.end('late'), 2_000);
        else response.writeHead(404).end();
      }));
    });
    after(() => close(server));

    const quick = (extra: Partial<HealthOptions> = {}): HealthOptions => ({
      runner: new ExecRunner(),
      deadlineMs: 10_000,
      intervalMs: 10,
      standby: false,
      ...extra,
    });

    it('is healthy on the expected status with the expected body', async () => {
      const report = await runHealthChecks([check('web', 'http', { url: `${url}/ok`, expectBody: 'ok' })], quick());
      assert.equal(report.results[0]?.status, 'healthy');
    });

    it('reports an unexpected status as "GET <url>: 503"', async () => {
      const report = await runHealthChecks([check('web', 'http', { url: `${url}/down`, retries: 0 })], quick());
      assert.equal(report.results[0]?.status, 'unhealthy');
      assert.equal(report.results[0]?.message, `GET ${url}/down: 503`);
    });

    it('reports a body that lacks the expected text', async () => {
      const report = await runHealthChecks([check('web', 'http', { url: `${url}/ok`, expectBody: 'ready', retries: 0 })], quick());
      assert.equal(report.results[0]?.message, `GET ${url}/ok: body lacks "ready"`);
    });

    it('reads at most 64 KiB of the body', async () => {
      const report = await runHealthChecks([check('web', 'http', { url: `${url}/big`, expectBody: 'needle', retries: 0 })], quick());
      assert.equal(report.results[0]?.status, 'unhealthy');
    });

    it('does not follow redirects: the redirect status is what is compared', async () => {
      const follow = await runHealthChecks([check('web', 'http', { url: `${url}/redirect`, retries: 0 })], quick());
      assert.equal(follow.results[0]?.message, `GET ${url}/redirect: 302`);
      const expected = await runHealthChecks([check('web', 'http', { url: `${url}/redirect`, expectStatus: 302 })], quick());
      assert.equal(expected.results[0]?.status, 'healthy');
    });

    it('retries until the endpoint answers as expected', async () => {
      hits = 0;
      const report = await runHealthChecks([check('web', 'http', { url: `${url}/flaky`, retries: 5 })], quick());
      assert.equal(report.results[0]?.status, 'healthy');
      assert.equal(report.results[0]?.attempts, 3);
    });

    it('times out an attempt after timeoutSeconds', async () => {
      const report = await runHealthChecks([check('web', 'http', { url: `${url}/slow`, timeoutSeconds: 0.2, retries: 0 })], quick());
      assert.equal(report.results[0]?.status, 'unhealthy');
      assert.equal(report.results[0]?.message, `GET ${url}/slow: no answer within 0.2s`);
    });

    it('names the connection error', async () => {
      const free = createTcpServer();
      await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
      const port = (free.address() as AddressInfo).port;
      await close(free);
      const report = await runHealthChecks([check('web', 'http', { url: `http://127.0.0.1:${port}/`, retries: 0 })], quick());
      assert.equal(report.results[0]?.message, `GET http://127.0.0.1:${port}/: ECONNREFUSED`);
    });
  });

  describe('tcp', () => {
    it('is healthy when it connects, unhealthy with the error code when refused', async () => {
      const server = createTcpServer((socket) => socket.end());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const open = (server.address() as AddressInfo).port;
      const closed = createTcpServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const refused = (closed.address() as AddressInfo).port;
      await close(closed);
      try {
        const report = await runHealthChecks(
          [
            check('up', 'tcp', { host: '127.0.0.1', port: open }),
            check('down', 'tcp', { host: '127.0.0.1', port: refused, retries: 0 }),
          ],
          { runner: new ExecRunner(), deadlineMs: 10_000, intervalMs: 10, standby: false },
        );
        assert.deepEqual(report.results.map((result) => [result.status, result.message]), [
          ['healthy', `connect 127.0.0.1:${open}: connected`],
          ['unhealthy', `connect 127.0.0.1:${refused}: ECONNREFUSED`],
        ]);
      } finally {
        await close(server);
      }
    });
  });
});
