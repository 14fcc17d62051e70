/**
 * Renders an env-file resource: the one kind whose templates may read host-local secrets, so its files are always
 * mode 0600 root:root and marked sensitive (plans and logs show keys, never values).
 */
import { fileBase, withFinalNewline } from '../common.js';
import type { RenderInput, RenderedFile } from '../types.js';
import { ENV_DIR } from './schema.js';

/** Renders one env-file resource. Throws RenderProblems for template errors and missing secrets. */
export function renderEnvFile(input: RenderInput): RenderedFile[] {
  const { resource } = input;
  const spec = resource.spec as { target?: string; template?: string };
  const rendered = input.engine.render(resource, input.data, { allowSecrets: true });
  return [
    {
      ...fileBase(input),
      owner: 'root',
      group: 'root',
      path: spec.target ?? `${ENV_DIR}/${resource.name}.env`,
      content: withFinalNewline(rendered.text),
      mode: 0o600,
      ...(typeof spec.template === 'string' ? { template: rendered.file } : {}),
      sensitive: true,
      secrets: rendered.secrets,
    },
  ];
}
