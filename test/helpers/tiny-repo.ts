/**
 * Writes a tiny desired-state repo from a compact description: one role "app", one host "test-host", optional
 * extra hosts. Used by the golden runner and by tests that need a repo with one twist.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';

/** The description of a tiny repo. */
export interface TinyRepo {
  role?: Record<string, unknown>;
  templates?: Record<string, string>;
  host?: Record<string, unknown>;
  hosts?: Record<string, Record<string, unknown>>;
  edge?: Record<string, unknown>;
  /** Extra raw files by repo-relative path. */
  files?: Record<string, string>;
}

/** The one host of a tiny repo. */
export const TINY_HOST = 'test-host';

/** Writes the repo into a new temp dir and returns its path. */
export async function writeTinyRepo(description: TinyRepo, parent = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(parent, 'edge-tiny-'));
  const files: Record<string, string> = {
    'edge.yaml': stringify({ version: 1, ...description.edge }),
    'roles/app/role.yaml': stringify(description.role ?? { resources: [] }),
    [`hosts/${TINY_HOST}.yaml`]: stringify({ address: '100.64.0.10', roles: ['app'], ...description.host }),
    ...Object.fromEntries(
      Object.entries(description.hosts ?? {}).map(([name, host]) => [
        `hosts/${name}.yaml`,
        stringify({ address: '100.64.0.99', roles: ['app'], ...host }),
      ]),
    ),
    ...Object.fromEntries(
      Object.entries(description.templates ?? {}).map(([name, text]) => [`roles/app/templates/${name}`, text]),
    ),
    ...description.files,
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}
