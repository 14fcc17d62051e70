/**
 * The load stage against hostile repos: alias bombs, deep nesting, bytes that are not UTF-8, secrets hidden in
 * large or binary files, and symlinks inside the repo. Each ends as a named problem with its file, never a crash.
 */
import assert from 'node:assert/strict';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { InvalidRevisionError, type Problem } from '../../../reconciler/errors.js';
import { loadDesiredState } from '../../../reconciler/stages/load.js';
import type { TreeFiles } from '../../../reconciler/source/git-tree.js';
import { writeTinyRepo } from '../../helpers/tiny-repo.js';

const PRIVATE_KEY_LINE = ['-----BEGIN OPENSSH', 'PRIVATE KEY-----'].join(' ');

async function problemsOf(load: () => Promise<unknown>): Promise<Problem[]> {
  try {
    await load();
    return [];
  } catch (error) {
    assert.ok(error instanceof InvalidRevisionError, String(error));
    return error.problems;
  }
}

/** Loads a tiny repo after `twist` changed it on disk. */
async function diskProblems(twist: (repo: string) => Promise<void>): Promise<Problem[]> {
  const repo = await writeTinyRepo({});
  try {
    await twist(repo);
    return await problemsOf(() => loadDesiredState(repo));
  } finally {
    await rm(repo, { recursive: true, force: true });
  }
}

/** A tree in memory: the tiny repo's files plus `extra` (a string value is a file, `{ link }` a symlink). */
function treeOf(extra: Record<string, string | Buffer | { link: string }>): TreeFiles {
  const tree: TreeFiles = new Map();
  const base: Record<string, string> = {
    'edge.yaml': stringify({ version: 1 }),
    'hosts/test-host.yaml': stringify({ address: '100.64.0.10', roles: ['app'] }),
    'roles/app/role.yaml': stringify({ resources: [] }),
  };
  for (const [path, value] of Object.entries({ ...base, ...extra })) {
    if (typeof value === 'object' && !Buffer.isBuffer(value)) tree.set(path, { content: Buffer.from(value.link), mode: '120000' });
    else tree.set(path, { content: Buffer.isBuffer(value) ? value : Buffer.from(value), mode: '100644' });
  }
  return tree;
}

function codes(problems: Problem[]): string[] {
  return problems.map((p) => `${p.code} ${p.file}`);
}

describe('load stage against hostile repos', () => {
  it('refuses a yaml alias bomb as YAML_ALIAS_LIMIT naming the file', async () => {
    let bomb = 'address: 100.64.0.10\nroles: [app]\nvars:\n  a0: &a0 [x, x, x, x, x, x, x, x, x]\n';
    for (let level = 1; level < 10; level++) {
      const prev = `*a${level - 1}`;
      bomb += `  a${level}: &a${level} [${Array(9).fill(prev).join(', ')}]\n`;
    }
    const problems = await diskProblems((repo) => writeFile(join(repo, 'hosts/test-host.yaml'), bomb));
    assert.deepEqual(codes(problems), ['YAML_ALIAS_LIMIT hosts/test-host.yaml']);
  });

  it('refuses block nesting too deep for the parser as YAML_TOO_DEEP, with the line', async () => {
    const deep = `address: 100.64.0.10\nroles: [app]\nvars:\n  x:\n    ${'- '.repeat(20_000)}1\n`;
    const problems = await diskProblems((repo) => writeFile(join(repo, 'hosts/test-host.yaml'), deep));
    assert.deepEqual(codes(problems), ['YAML_TOO_DEEP hosts/test-host.yaml']);
    assert.equal(problems[0]?.line, 5);
  });

  it('refuses flow nesting and indentation nesting too deep as YAML_TOO_DEEP', async () => {
    const flow = `resources: []\nvars:\n  x: ${'['.repeat(5_000)}${']'.repeat(5_000)}\n`;
    let indented = 'resources: []\nvars:\n';
    for (let level = 1; level <= 80; level++) indented += `${'  '.repeat(level)}k${level}:\n`;
    for (const text of [flow, indented]) {
      const problems = await diskProblems((repo) => writeFile(join(repo, 'roles/app/role.yaml'), text));
      assert.deepEqual(codes(problems), ['YAML_TOO_DEEP roles/app/role.yaml']);
    }
  });

  it('loads ordinary nesting and brackets inside quotes', async () => {
    const text = 'resources: []\nvars:\n  a: {b: {c: [1, [2, [3]]]}}\n  s: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["\n';
    const problems = await diskProblems((repo) => writeFile(join(repo, 'roles/app/role.yaml'), text));
    assert.deepEqual(problems, []);
  });

  it('refuses yaml and templates that are not strict UTF-8, naming the file and line', async () => {
    const problems = await diskProblems(async (repo) => {
      await writeFile(join(repo, 'hosts/test-host.yaml'), Buffer.concat([Buffer.from('address: 100.64.0.10\nroles: [app]\nvars: {name: "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
      await mkdir(join(repo, 'roles/app/templates'), { recursive: true });
      await writeFile(join(repo, 'roles/app/templates/app.service.hbs'), Buffer.from('[Service]\nExecStart=/bin/true\0\n'));
      await writeFile(join(repo, 'roles/app/templates/overlong.hbs'), Buffer.from([0x61, 0x0a, 0xc0, 0xaf]));
    });
    assert.deepEqual(
      problems.map((p) => `${p.code} ${p.file}:${p.line}`).sort(),
      ['FILE_ENCODING hosts/test-host.yaml:3', 'FILE_ENCODING roles/app/templates/app.service.hbs:2', 'FILE_ENCODING roles/app/templates/overlong.hbs:2'],
    );
  });

  it('finds a private key inside a large file and inside a file with NUL bytes', async () => {
    const problems = await diskProblems(async (repo) => {
      await writeFile(join(repo, 'big.bin'), Buffer.concat([Buffer.alloc(3 * 1024 * 1024, 0x61), Buffer.from(`\n${PRIVATE_KEY_LINE}\n`)]));
      await writeFile(join(repo, 'blob.bin'), Buffer.concat([Buffer.from([0, 1, 2, 0]), Buffer.from(PRIVATE_KEY_LINE)]));
    });
    assert.deepEqual(codes(problems).sort(), ['SECRET_PRIVATE_KEY big.bin', 'SECRET_PRIVATE_KEY blob.bin']);
    assert.equal(problems.find((p) => p.file === 'big.bin')?.line, 2);
  });

  it('finds a secret in a tree in memory whatever its bytes, and a key split across scan chunks', async () => {
    const split = Buffer.concat([Buffer.alloc(256 * 1024 - 10, 0), Buffer.from(PRIVATE_KEY_LINE)]);
    const problems = await problemsOf(() => loadDesiredState('/nonexistent', treeOf({ 'assets/x.bin': split })));
    assert.deepEqual(codes(problems), ['SECRET_PRIVATE_KEY assets/x.bin']);
  });

  it('names the right line of a secret after clean chunks and clean lines, scanned in chunks of any size', async () => {
    const { SecretScanner } = await import('../../../reconciler/secrets/secret-scan.js');
    const token = `ghp_${'a1B2'.repeat(9)}`;
    const text = `${'clean: line\n'.repeat(500)}tail without end ${'x'.repeat(5000)}\nkey: ${token}\nclean again\n`;
    for (const size of [1, 7, 100, 4096, text.length]) {
      const scanner = new SecretScanner('roles/r/role.yaml');
      for (let at = 0; at < text.length; at += size) scanner.push(Buffer.from(text.slice(at, at + size), 'latin1'));
      assert.deepEqual(scanner.finish().map((p) => `${p.code}:${p.line}`), ['SECRET_TOKEN:502'], `chunks of ${size}`);
    }
  });

  it('follows a role folder that is a symlink inside the repo, on disk and in a tree', async () => {
    const role = stringify({ resources: [{ kind: 'file', name: 'conf', target: '/etc/sysctl.d/90-x.conf', content: 'a = 1\n' }] });
    const onDisk = await writeTinyRepo({ host: { roles: ['app', 'alias'] } });
    try {
      await mkdir(join(onDisk, 'shared/role'), { recursive: true });
      await writeFile(join(onDisk, 'shared/role/role.yaml'), role);
      await symlink('../shared/role', join(onDisk, 'roles/alias'));
      const state = await loadDesiredState(onDisk);
      assert.equal(state.roles.get('alias')?.resources.length, 1);
    } finally {
      await rm(onDisk, { recursive: true, force: true });
    }
    const tree = treeOf({
      'hosts/test-host.yaml': stringify({ address: '100.64.0.10', roles: ['app', 'alias'] }),
      'shared/role/role.yaml': role,
      'roles/alias': { link: '../shared/role' },
    });
    const state = await loadDesiredState('/nonexistent', tree);
    assert.equal(state.roles.get('alias')?.resources.length, 1);
  });

  it('refuses symlinks that leave the repo or loop, on disk and in a tree', async () => {
    const problems = await diskProblems(async (repo) => {
      await symlink('/etc', join(repo, 'roles/etc'));
      await symlink('..', join(repo, 'roles/app/loop'));
    });
    assert.deepEqual(codes(problems).sort(), ['PATH_SYMLINK_ESCAPE roles/app/loop', 'PATH_SYMLINK_ESCAPE roles/etc']);
    const inTree = await problemsOf(() =>
      loadDesiredState('/nonexistent', treeOf({ 'roles/etc': { link: '/etc' }, 'roles/app/loop': { link: '..' }, 'roles/up': { link: '../..' } })),
    );
    assert.deepEqual(codes(inTree).sort(), ['PATH_SYMLINK_ESCAPE roles/app/loop', 'PATH_SYMLINK_ESCAPE roles/etc', 'PATH_SYMLINK_ESCAPE roles/up']);
  });

  it('refuses links to folders inside linked folders, so crossed links cannot repeat the repo without end', async () => {
    const problems = await diskProblems(async (repo) => {
      for (const name of ['a', 'b']) await mkdir(join(repo, 'shared', name), { recursive: true });
      for (const [from, to] of [['a', 'b'], ['b', 'a']]) {
        for (const link of ['l1', 'l2', 'l3']) await symlink(`../${to}`, join(repo, 'shared', from, link));
      }
    });
    assert.ok(problems.length > 0 && problems.every((p) => p.code === 'PATH_SYMLINK_ESCAPE'), JSON.stringify(problems));
    assert.match(problems[0]?.message ?? '', /inside a linked folder/);
    const inTree = await problemsOf(() =>
      loadDesiredState('/nonexistent', treeOf({ 'shared/a/x': 'x', 'shared/a/l1': { link: '../b' }, 'shared/b/l1': { link: '../a' } })),
    );
    assert.ok(inTree.length > 0 && inTree.every((p) => p.code === 'PATH_SYMLINK_ESCAPE'), JSON.stringify(inTree));
  });
});
