/**
 * A batch of new files made durable (host/durable.ts), watched with strace in a real process: a big batch is one
 * syncfs per filesystem and no fsync, a small one (or a host without `sync`) an fsync of every file and directory,
 * and a `sync` that fails is an error, never a silent success.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertStrace } from '../helpers/assertions.js';

const DURABLE = fileURLToPath(new URL('../../reconciler/host/durable.js', import.meta.url));

interface Call {
  call: 'fsync' | 'syncfs';
  path: string;
  pid: number;
}

describe('making a batch of new files durable', function () {
  this.timeout(60_000);
  const cleanup: string[] = [];
  let dir: string;

  before(async () => {
    await assertStrace();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-durable-'));
    cleanup.push(dir);
  });
  after(async () => {
    await Promise.all(cleanup.map((path) => rm(path, { recursive: true, force: true })));
  });

  /** `count` new files under `parent`, spread over two directories. */
  async function newFiles(parent: string, count: number): Promise<{ files: string[]; dirs: string[] }> {
    const dirs = [join(parent, 'a'), join(parent, 'b')];
    for (const sub of dirs) await mkdir(sub);
    const files = Array.from({ length: count }, (_, n) => join(dirs[n % 2] ?? parent, `f${n}`));
    for (const file of files) await writeFile(file, `content ${file}\n`);
    return { files, dirs };
  }

  /** Runs makeDurable in a traced node process; its fsync and syncfs calls, and how it ended. */
  async function traced(files: string[], dirs: string[], options: object = {}): Promise<{ calls: Call[]; syncPids: number[]; exitCode: number; stderr: string }> {
    const input = join(dir, 'input.json');
    const trace = join(dir, 'trace');
    await writeFile(input, JSON.stringify({ files, dirs, options }));
    const script = `const { makeDurable } = await import(${JSON.stringify(DURABLE)});
      const { readFileSync } = await import('node:fs');
      const { files, dirs, options } = JSON.parse(readFileSync(${JSON.stringify(input)}, 'utf8'));
      await makeDurable(files, dirs, options);`;
    const run = await execa('strace', ['-f', '-y', '-e', 'trace=fsync,syncfs,execve', '-o', trace, process.execPath, '--input-type=module', '-e', script], {
      reject: false,
      timeout: 30_000,
    });
    const text = await readFile(trace, 'utf8');
    const syncPids = [...text.matchAll(/^(\d+)\s+execve\("[^"]*\/sync"/gm)].map(([, pid]) => Number(pid));
    const calls = [...text.matchAll(/^(\d+)\s+(fsync|syncfs)\(\d+<([^>]+)>\)\s+=\s+0/gm)].map(([, pid, call, path]) => ({
      pid: Number(pid),
      call: call as Call['call'],
      path: path ?? '',
    }));
    return { calls, syncPids, exitCode: run.exitCode ?? -1, stderr: String(run.stderr) };
  }

  it('syncs a big batch with one syncfs per filesystem, from a child, and fsyncs none of its files', async () => {
    const here = await newFiles(join(dir), 100);
    const shm = await mkdtemp('/dev/shm/edge-durable-');
    cleanup.push(shm);
    assert.notEqual(statSync(shm).dev, statSync(dir).dev, '/dev/shm is its own filesystem');
    const there = await newFiles(shm, 10);
    const { calls, syncPids, exitCode, stderr } = await traced([...here.files, ...there.files], [...here.dirs, ...there.dirs]);
    assert.equal(exitCode, 0, stderr);
    const syncfs = calls.filter((call) => call.call === 'syncfs');
    assert.equal(syncfs.length, 2, JSON.stringify(calls));
    assert.deepEqual(syncfs.map((call) => statSync(call.path).dev).sort(), [statSync(dir).dev, statSync(shm).dev].sort());
    assert.equal(syncPids.length, 1, 'one `sync` for the batch');
    assert.ok(syncfs.every((call) => call.pid === syncPids[0]), 'syncfs runs in the `sync` child');
    const fsynced = new Set(calls.filter((call) => call.call === 'fsync').map((call) => call.path));
    assert.deepEqual([...here.files, ...there.files].filter((file) => fsynced.has(file)), []);
  });

  it('fsyncs every file, then every directory, of a small batch, without starting `sync`', async () => {
    const { files, dirs } = await newFiles(dir, 6);
    const { calls, syncPids, exitCode, stderr } = await traced(files, dirs);
    assert.equal(exitCode, 0, stderr);
    assert.deepEqual(syncPids, []);
    assert.deepEqual(calls.filter((call) => call.call === 'syncfs'), []);
    assert.deepEqual(
      calls.map((call) => call.path),
      [...files, ...dirs],
    );
  });

  it('falls back to an fsync of every file and directory when the host has no `sync`', async () => {
    const { files, dirs } = await newFiles(dir, 100);
    const { calls, exitCode, stderr } = await traced(files, dirs, { binary: join(dir, 'no-such-sync') });
    assert.equal(exitCode, 0, stderr);
    assert.deepEqual(calls.filter((call) => call.call === 'syncfs'), []);
    assert.deepEqual(new Set(calls.map((call) => call.path)), new Set([...files, ...dirs]));
  });

  it('fails, naming the command and its words, when `sync` fails', async () => {
    const { files, dirs } = await newFiles(dir, 100);
    const failing = join(dir, 'failing-sync');
    await writeFile(failing, '#!/bin/sh\necho "sync: error syncing \'$3\': Input/output error" >&2\nexit 1\n', { mode: 0o755 });
    const { exitCode, stderr } = await traced(files, dirs, { binary: failing });
    assert.notEqual(exitCode, 0);
    assert.match(stderr, /could not write the new files to disk \(.*failing-sync -f\): sync: error syncing '.*': Input\/output error/);
  });
});
