#!/usr/bin/env node
/**
 * Builds the self-contained `edge-reconciler` executable into dist-bin/: esbuild bundles the CLI and every
 * dependency into one CommonJS file, Node's single executable application support turns it into a blob (with
 * V8's code cache, so a start compiles nothing), and postject injects the blob into a copy of this machine's
 * `node`. The result runs on a machine without Node (Ubuntu 24.04, Debian 12; x86-64 glibc).
 *
 *   node packaging/build-executable.mjs        (npm run dist)
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist-bin');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const bundle = join(out, 'edge-reconciler.cjs');
const blob = join(out, 'edge-reconciler.blob');
const executable = join(out, 'edge-reconciler');
// The fuse that tells a node binary it carries a blob (Node's SEA documentation).
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function step(message) {
  process.stderr.write(`dist: ${message}\n`);
}

/** Runs a build tool quietly; its output is shown only when it fails. */
function quietly(file, args) {
  try {
    execFileSync(file, args, { stdio: 'pipe', encoding: 'utf8' });
  } catch (error) {
    process.stderr.write(`${error.stdout ?? ''}${error.stderr ?? ''}`);
    throw error;
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

step(`bundling reconciler/cli/main.ts (version ${version})`);
await build({
  entryPoints: [join(root, 'reconciler', 'cli', 'main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  define: { EDGE_RECONCILER_VERSION: JSON.stringify(version) },
  // version.ts reads package.json through import.meta only when the define above is absent.
  logOverride: { 'empty-import-meta': 'silent' },
  logLevel: 'warning',
});

step('writing the SEA blob with the code cache');
const seaConfig = join(out, 'sea-config.json');
writeFileSync(seaConfig, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
quietly(process.execPath, ['--experimental-sea-config', seaConfig]);

step(`injecting it into a copy of ${process.execPath} (${process.version})`);
copyFileSync(process.execPath, executable);
chmodSync(executable, 0o755);
const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
// postject warns about ELF note sections it does not know; harmless, and shown only on failure.
quietly(process.execPath, [postject, executable, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]);
rmSync(seaConfig);
rmSync(blob);

const reported = execFileSync(executable, ['--version'], { encoding: 'utf8' }).trim();
if (reported !== version) throw new Error(`the executable reports version ${reported}, expected ${version}`);
step(`built ${executable} (${(statSync(executable).size / 1024 / 1024).toFixed(0)} MB, version ${reported})`);
