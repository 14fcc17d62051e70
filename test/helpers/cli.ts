/** Runs the built CLI as a user would, and copies the example repo for tests that break it. */
import { execa } from 'execa';
import { cp, mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, EXAMPLE_REPO } from './paths.js';

/** The outcome of one CLI run. */
export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs `edge-reconciler <args>` with node (`input` on its stdin); never throws on a non-zero exit. */
export async function runCli(args: string[], options: { cwd?: string; input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const result = await execa(process.execPath, [CLI, ...args], { reject: false, cwd: options.cwd, env: options.env, timeout: 120_000, input: options.input ?? '' });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Copies the bundled example desired-state into a fresh temp dir. */
export async function copyExampleRepo(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-example-'));
  await cp(EXAMPLE_REPO, dir, { recursive: true });
  return dir;
}

/** Secrets of the example hosts, with values distinctive enough to grep for. */
export const EXAMPLE_SECRETS: Record<string, string> = {
  LOD_DB_PASSWORD: 'pw-Zq81xLodDbPassword',
  LOD_SESSION_SECRET: 'sess-Kk29SessionSecretValue',
  MODEL_GATEWAY_API_KEY: 'key-Mg55GatewayApiKeyValue',
};

/** Writes a secrets dir (files 0600) and returns its path. */
export async function writeSecretsDir(secrets: Record<string, string> = EXAMPLE_SECRETS): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-secrets-'));
  await mkdir(dir, { recursive: true });
  for (const [name, value] of Object.entries(secrets)) await writeFile(join(dir, name), `${value}\n`, { mode: 0o600 });
  return dir;
}
