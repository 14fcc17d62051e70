/**
 * Suspension survives in the state dir with its reason until resume, and the apply gate puts it before the
 * maintenance windows, which only a manual run overrides.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MaintenanceConfig } from '../../reconciler/config/schedule.js';
import { applyGate, readSuspension, resumeHost, suspendHost, suspensionPath } from '../../reconciler/state/suspend.js';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { removeScratchDirs, scratchDir } from '../helpers/scratch.js';

async function stateDir(): Promise<string> {
  return scratchDir('edge-suspend-');
}

/** Runs `suspend`/`resume` as main.ts registers them, in a real process. */
async function runSuspendCli(args: string[]) {
  const script = `import { Command } from 'commander'; import { registerSuspend } from '${join(PROJECT_ROOT, 'dist', 'reconciler', 'cli', 'suspend.js')}';
const program = new Command().name('edge-reconciler'); registerSuspend(program); await program.parseAsync(process.argv.slice(1), { from: 'user' });`;
  const result = await execa(process.execPath, ['--input-type=module', '-e', script, '--', ...args], { cwd: PROJECT_ROOT, reject: false, env: { SUDO_USER: 'alice' } });
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

const always: MaintenanceConfig = { timezone: 'UTC', windows: [] };
const nights: MaintenanceConfig = { timezone: 'UTC', windows: [{ action: 'allow', cron: '* 2-4 * * *' }] };
const noon = new Date('2026-05-01T12:00:00Z');

describe('suspension', () => {
  after(removeScratchDirs);

  it('persists the reason, time and operator until resume', async () => {
    const dir = await stateDir();
    assert.equal(await readSuspension(dir), undefined);
    const at = new Date('2026-05-01T10:00:00Z');
    assert.deepEqual(await suspendHost(dir, '  db migration by hand  ', 'alice', at), { reason: 'db migration by hand', at: at.toISOString(), by: 'alice' });
    assert.equal((await stat(suspensionPath(dir))).mode & 0o777, 0o600);
    assert.deepEqual(await readSuspension(dir), { reason: 'db migration by hand', at: at.toISOString(), by: 'alice' });
    assert.deepEqual(await resumeHost(dir), { reason: 'db migration by hand', at: at.toISOString(), by: 'alice' });
    assert.equal(await readSuspension(dir), undefined);
    assert.equal(await resumeHost(dir), undefined);
  });

  it('refuses a suspension without a reason', async () => {
    await assert.rejects(suspendHost(await stateDir(), '   '), /a suspension needs a reason/);
  });

  it('a damaged suspend.json still suspends, and resume lifts it', async () => {
    const dir = await stateDir();
    await writeFile(suspensionPath(dir), '{"reason": ');
    const suspension = await readSuspension(dir);
    assert.match(suspension?.reason ?? '', /suspend\.json is damaged: run resume to lift it/);
    assert.ok(await resumeHost(dir));
    assert.equal(await readSuspension(dir), undefined);
  });

  describe('the apply gate', () => {
    const suspension = { reason: 'db migration by hand', at: '2026-05-01T10:00:00.000Z', by: 'alice' };
    const table = [
      { name: 'open: not suspended, no windows', options: { maintenance: always, now: noon }, allowed: true, code: undefined, reason: /no maintenance windows/ },
      { name: 'a suspension holds', options: { suspension, maintenance: always, now: noon }, allowed: false, code: 'SUSPENDED', reason: /^host suspended by alice since 2026-05-01T10:00:00.000Z: db migration by hand$/ },
      { name: 'a suspension holds even for reconcile --now', options: { suspension, maintenance: always, now: noon, manual: true }, allowed: false, code: 'SUSPENDED', reason: /host suspended/ },
      { name: 'outside the windows: wait for the next one', options: { maintenance: nights, now: noon }, allowed: false, code: 'MAINTENANCE_WINDOW', reason: /outside every allow window; next open 2026-05-02 02:00 UTC/ },
      { name: 'reconcile --now overrides the windows', options: { maintenance: nights, now: noon, manual: true }, allowed: true, code: undefined, reason: /manual run overrides the maintenance windows \(outside every allow window/ },
    ] as const;
    for (const row of table) {
      it(row.name, () => {
        const gate = applyGate(row.options);
        assert.equal(gate.allowed, row.allowed);
        assert.equal(gate.code, row.code);
        assert.match(gate.reason, row.reason);
        if (row.code === 'MAINTENANCE_WINDOW') assert.equal(gate.nextOpen?.toISOString(), '2026-05-02T02:00:00.000Z');
      });
    }
  });

  describe('edge-reconciler suspend and resume', () => {
    it('suspend records the reason and the sudo user; resume lifts it', async () => {
      const dir = await stateDir();
      const suspended = await runSuspendCli(['suspend', '--reason', 'disk swap on the host', '--state-dir', dir]);
      assert.equal(suspended.exitCode, 0, suspended.stderr);
      assert.match(suspended.stdout, new RegExp(`suspended \\(${dir}\\) since .* by alice: disk swap on the host`));
      const stored = JSON.parse(await readFile(suspensionPath(dir), 'utf8')) as { reason: string; by: string };
      assert.deepEqual([stored.reason, stored.by], ['disk swap on the host', 'alice']);

      const resumed = await runSuspendCli(['resume', '--state-dir', dir]);
      assert.equal(resumed.exitCode, 0, resumed.stderr);
      assert.match(resumed.stdout, /resumed .*; was suspended since .* by alice: disk swap on the host/);
      assert.match((await runSuspendCli(['resume', '--state-dir', dir])).stdout, /not suspended/);
    });

    it('finds the state dir in the config, even when the config is otherwise broken', async () => {
      const dir = await stateDir();
      const config = join(dir, 'config.yaml');
      await writeFile(config, `stateDir: ${dir}\npol: 5\n`);
      const result = await runSuspendCli(['suspend', '--reason', 'incident 42', '--config', config, '--by', 'bob']);
      assert.equal(result.exitCode, 0, result.stderr);
      assert.deepEqual(await readSuspension(dir).then((s) => [s?.reason, s?.by]), ['incident 42', 'bob']);
    });

    it('suspend needs --reason', async () => {
      const result = await runSuspendCli(['suspend', '--state-dir', await stateDir()]);
      assert.equal(result.exitCode, 1);
      assert.match(result.stderr, /required option '--reason <text>'/);
    });
  });
});
