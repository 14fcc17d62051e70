/**
 * What the configured host would get, without touching the host or the agent's state: the desired state is fetched
 * from the config's source into a throwaway mirror (or read from `--repo DIR`), and the host is rendered with
 * placeholder secrets, so that `secrets list` and `doctor` can say which secrets it needs and what the first apply
 * would change.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostConfig } from '../config/host-config.js';
import { DEFAULT_PATH_POLICY } from '../host/path-policy.js';
import type { DesiredState } from '../model.js';
import { exportRevision } from '../source/git.js';
import { loadDesiredState } from '../stages/load.js';
import { renderHost } from '../stages/render.js';
import { placeholderSecrets } from '../../renderers/template.js';
import type { RenderedFile } from '../../renderers/types.js';

/** The rendered host and where it came from. */
export interface HostPreview {
  state: DesiredState;
  files: RenderedFile[];
  /** The commit (or tree hash) the preview was rendered from. */
  revision: string;
}

/** A secret a host needs, and the managed files whose templates use it. */
export interface NeededSecret {
  name: string;
  usedBy: string[];
}

/** Fetches (or reads `repoDir`) and renders `config.host` with placeholders for the secrets. */
export async function previewHost(config: HostConfig, repoDir?: string): Promise<HostPreview> {
  const scratch = await mkdtemp(join(tmpdir(), 'edge-preview-'));
  try {
    const exported = await exportRevision({
      repo: repoDir ?? config.repo,
      ...(repoDir === undefined && config.tagPattern !== undefined ? { tagPattern: config.tagPattern } : {}),
      ...(repoDir === undefined && config.ref !== undefined ? { ref: config.ref } : {}),
      ...(repoDir === undefined && config.path !== undefined ? { path: config.path } : {}),
      auth: config.auth,
      mirrorDir: join(scratch, 'mirror.git'),
      stagingParent: scratch,
    });
    const state = await loadDesiredState(exported.dir, exported.files);
    const { files } = renderHost(state, config.host, placeholderSecrets, DEFAULT_PATH_POLICY);
    return { state, files, revision: exported.revision };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The secrets the rendered files use, by name, each with the files that use it. */
export function neededSecrets(files: readonly RenderedFile[]): NeededSecret[] {
  const byName = new Map<string, string[]>();
  for (const file of files) for (const name of file.secrets) byName.set(name, [...(byName.get(name) ?? []), file.path]);
  return [...byName].sort(([a], [b]) => a.localeCompare(b)).map(([name, usedBy]) => ({ name, usedBy: usedBy.sort() }));
}
