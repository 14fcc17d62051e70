/**
 * The state dir's lock across real processes: exactly one holder at a time even when the holder is slow, a holder
 * killed with SIGKILL frees it, and a lock file that names some live (reused) pid blocks nobody.
 */
import assert from 'node:assert/strict';
import { execa, type ResultPromise } from 'execa';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../../reconciler/state/lock.js';
import { EdgeError } from '../../reconciler/errors.js';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { waitUntil } from '../helpers/wait.js';

const HOLDER = join(PROJECT_ROOT, 'dist', 'test', 'helpers', 'lock-holder.js');

describe('state dir lock (flock, real processes)', function () {
  this.timeout(120_000);
  let dir: string;
  let lock: string;
  let log: string;
  const children: ResultPromise[] = [];

  const holder = (rounds: number, holdMs: number): ResultPromise => {
    const child = execa(process.execPath, [HOLDER, lock, log, String(rounds), String(holdMs)], { reject: false });
    children.push(child);
    return child;
  };
  const logLines = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-lock-'));
    lock = join(dir, 'lock');
    log = join(dir, 'log');
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      // flock(1)'s command inherits its lock: end the whole group of a detached holder.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }
      await child;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('lets exactly one of several processes hold the lock at a time while each holder is slow', async () => {
    const results = await Promise.all([holder(4, 50), holder(4, 50), holder(4, 50), holder(4, 50)]);
    for (const result of results) assert.equal(result.exitCode, 0, String(result.stderr));
    const lines = await logLines();
    assert.equal(lines.length, 32);
    for (let i = 0; i < lines.length; i += 2) {
      const [enter, leave] = [lines[i], lines[i + 1]];
      assert.match(enter ?? '', /^enter \d+$/);
      assert.equal(leave, enter?.replace('enter', 'leave'), `line ${i + 2}: another process entered while ${enter} held the lock`);
    }
  });

  it('refuses with LOCKED naming the holder, and leaves the holder\'s lock file in place', async () => {
    const child = holder(1, -1);
    await waitUntil(async () => (await logLines()).length > 0, { timeoutMs: 60_000, what: 'the holder to take the lock' });
    const inode = (await stat(lock)).ino;
    await assert.rejects(acquireLock(lock, 0), (error: unknown) => {
      assert.ok(error instanceof EdgeError);
      assert.equal(error.code, 'LOCKED');
      assert.match(error.message, new RegExp(`pid ${child.pid}`));
      return true;
    });
    assert.equal((await stat(lock)).ino, inode, 'the refused run replaced the lock file');
    await assert.rejects(acquireLock(lock, 0), { code: 'LOCKED' });
  });

  it('refuses while the holder has not named itself yet (an empty lock file), and never unlinks it', async () => {
    // util-linux's flock(1) holds the lock without writing the file: a holder caught between locking and naming.
    const child = execa('flock', ['--exclusive', lock, 'sh', '-c', `echo enter >> ${log}; exec sleep 600`], { reject: false, detached: true });
    children.push(child);
    await waitUntil(async () => (await logLines()).length > 0, { timeoutMs: 60_000, what: 'flock(1) to take the lock' });
    const inode = (await stat(lock)).ino;
    await assert.rejects(acquireLock(lock, 0), (error: unknown) => {
      assert.ok(error instanceof EdgeError);
      assert.equal(error.code, 'LOCKED');
      assert.match(error.message, /a process that has not named itself yet/);
      return true;
    });
    assert.equal((await stat(lock)).ino, inode, 'the refused run unlinked the live lock');
  });

  it('is free again once its holder is killed with SIGKILL', async () => {
    const child = holder(1, -1);
    await waitUntil(async () => (await logLines()).length > 0, { timeoutMs: 60_000, what: 'the holder to take the lock' });
    await assert.rejects(acquireLock(lock, 0), { code: 'LOCKED' });
    child.kill('SIGKILL');
    await child;
    const unlock = await acquireLock(lock, 0);
    await unlock();
  });

  it('takes over a stale lock file whose pid now belongs to another live process', async () => {
    // What a holder killed before this version left behind, its pid since reused: pid 1 and this test's own.
    for (const pid of [1, process.pid]) {
      await writeFile(lock, `${pid}\n`);
      const unlock = await acquireLock(lock, 0);
      await unlock();
    }
  });

  it('waits for a slow holder up to the wait given, then takes the lock', async () => {
    holder(1, 1_000);
    await waitUntil(async () => (await logLines()).length > 0, { timeoutMs: 60_000, what: 'the holder to take the lock' });
    const unlock = await acquireLock(lock, 60_000);
    assert.deepEqual((await logLines()).map((line) => line.split(' ')[0]), ['enter', 'leave'], 'the waiter took the lock before the holder left');
    await unlock();
  });

  it('names the lock file when it cannot be opened', async () => {
    await assert.rejects(acquireLock(join(dir, 'missing', 'lock'), 0), (error: unknown) => {
      assert.ok(error instanceof EdgeError);
      assert.equal(error.code, 'LOCK_FAILED');
      assert.match(error.message, /missing\/lock: cannot open it \(ENOENT\)/);
      return true;
    });
  });
});
