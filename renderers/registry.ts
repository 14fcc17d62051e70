/**
 * The resource kinds, listed explicitly and alphabetically. A test checks that this list matches the folders
 * under renderers/.
 */
import type { ResourceKind } from '../reconciler/model.js';
import type { Renderer } from './types.js';
import { appRenderer } from './app/index.js';
import { caddyRenderer } from './caddy/index.js';
import { envFileRenderer } from './env-file/index.js';
import { fileRenderer } from './file/index.js';
import { systemdUnitRenderer } from './systemd-unit/index.js';
import { ufwRenderer } from './ufw/index.js';

/** Every renderer, alphabetical by kind. */
export const RENDERERS: readonly Renderer[] = [
  appRenderer,
  caddyRenderer,
  envFileRenderer,
  fileRenderer,
  systemdUnitRenderer,
  ufwRenderer,
];

const byKind = new Map<ResourceKind, Renderer>(RENDERERS.map((renderer) => [renderer.kind, renderer]));

/** The renderer of a kind; the schema check guarantees the kind exists. */
export function rendererFor(kind: ResourceKind): Renderer {
  const renderer = byKind.get(kind);
  if (!renderer) throw new Error(`no renderer for kind "${kind}"`);
  return renderer;
}
