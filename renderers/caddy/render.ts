/**
 * Renders a caddy resource: one file under /etc/caddy, mode 0644 root:root, never with secrets (Caddy reads
 * secrets through `{$VAR}` from an EnvironmentFile of caddy.service).
 */
import { declProblem, fileBase, withFinalNewline } from '../common.js';
import { RenderProblems, type RenderInput, type RenderedFile } from '../types.js';
import { MAIN_CADDYFILE_NAME, MAIN_CADDYFILE_PATH } from './schema.js';

/** The spec fields of a caddy resource after the schema check. */
export interface CaddySpec {
  template?: string;
  content?: string;
  target?: string;
  scope?: 'main' | 'site';
}

/** The default target of a caddy resource named `name`. */
export function defaultCaddyTarget(name: string): string {
  return name === MAIN_CADDYFILE_NAME ? MAIN_CADDYFILE_PATH : `/etc/caddy/sites/${name}.caddy`;
}

/** Renders one caddy resource into its file. */
export function renderCaddy(input: RenderInput): RenderedFile[] {
  const { resource } = input;
  const spec = resource.spec as CaddySpec;
  const path = spec.target ?? defaultCaddyTarget(resource.name);
  const scope = spec.scope ?? (resource.name === MAIN_CADDYFILE_NAME ? 'main' : 'site');
  // Validation treats exactly the file caddy.service loads as the root, so scope and target must agree.
  if ((scope === 'main') !== (path === MAIN_CADDYFILE_PATH)) {
    throw new RenderProblems([
      declProblem(
        input,
        'CADDY_SCOPE_TARGET',
        scope === 'main'
          ? `caddy "${resource.name}" has scope "main" but target ${path}: the main Caddyfile is ${MAIN_CADDYFILE_PATH}`
          : `caddy "${resource.name}" has scope "site" but target ${path}, which is the main Caddyfile`,
      ),
    ]);
  }
  const rendered = input.engine.render(resource, input.data, { allowSecrets: false });
  return [
    {
      ...fileBase(input),
      owner: 'root',
      group: 'root',
      path,
      content: withFinalNewline(rendered.text),
      mode: 0o644,
      template: rendered.file,
    },
  ];
}
