/**
 * The release dirs on the host: pruning keeps the newest `keep` releases and every protected one (the live one and
 * the one before it) whatever their age, removes the rest without a trace, and clears half-built work dirs.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../../reconciler/host/host.js';
import { listReleases, newReleaseWorkDir, pruneReleases, RELEASE_MARKER, removeReleaseLeftovers } from '../../reconciler/host/release-dirs.js';

const sha = (digit: string) => digit.repeat(40);

describe('app release dirs', () => {
  let root: string;
  let host: Host;
  const releases = () => join(root, 'srv/apps/lod/releases');

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'edge-releases-'));
    host = new Host(root);
    for (const [digit, day] of [['1', '01'], ['2', '02'], ['3', '03'], ['4', '04'], ['5', '05']] as const) {
      await mkdir(join(releases(), sha(digit)), { recursive: true });
      await writeFile(join(releases(), sha(digit), RELEASE_MARKER), JSON.stringify({ app: 'lod', sha: sha(digit), spec: 'x', builtAt: `2026-11-${day}T00:00:00Z`, buildSeconds: 1 }));
    }
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('lists releases newest build first', async () => {
    assert.deepEqual((await listReleases(host, 'lod')).map((release) => release.sha), ['5', '4', '3', '2', '1'].map(sha));
  });

  it('keeps the newest `keep` and the protected ones, and removes the others', async () => {
    const removed = await pruneReleases(host, 'lod', 3, new Set([sha('1'), sha('5')]));
    assert.deepEqual(removed.sort(), [sha('2'), sha('3')]);
    assert.deepEqual((await readdir(releases())).sort(), [sha('1'), sha('4'), sha('5')]);
  });

  it('removes half-built work dirs a killed run left', async () => {
    const work = await newReleaseWorkDir(host, 'lod', sha('6'));
    assert.match(work, /^\/srv\/apps\/lod\/releases\/\.edge-tmp\.6{40}\./);
    assert.deepEqual(await removeReleaseLeftovers(host, 'lod'), [work]);
    assert.equal((await readdir(releases())).filter((name) => name.startsWith('.')).length, 0);
  });
});
