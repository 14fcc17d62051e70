/**
 * Pieces every renderer shares: the common resource fields (template/content, mode, owner) and their schema.
 */
import type { RenderInput, RenderedFile } from './types.js';
import { RenderProblems } from './types.js';
import type { Problem } from '../reconciler/errors.js';

/** JSON-Schema properties every kind accepts: where the text comes from. */
export const TEXT_SOURCE_PROPERTIES = {
  template: {
    type: 'string',
    pattern: '^[A-Za-z0-9_][A-Za-z0-9_./-]*$',
    description: 'A handlebars file under roles/<role>/templates/.',
  },
  content: { type: 'string', description: 'Inline handlebars text, instead of a template file.' },
} as const;

/** JSON-Schema property every kind accepts: take over a file that exists but was never managed. */
export const ADOPT_PROPERTY = {
  adopt: {
    type: 'boolean',
    default: false,
    description:
      'Take over the target when it already exists but no generation managed it (it is backed up first). ' +
      'Without it, such a file is never overwritten.',
  },
} as const;

/** JSON-Schema properties for file ownership and mode. */
export const OWNERSHIP_PROPERTIES = {
  mode: { type: 'string', pattern: '^0?[0-7]{3}$', description: 'Octal file mode, e.g. "0644".' },
  owner: { type: 'string', pattern: '^[a-z_][a-z0-9_-]*$', default: 'root' },
  group: { type: 'string', pattern: '^[a-z_][a-z0-9_-]*$', default: 'root' },
} as const;

/** Parses an octal mode string ("0644"), or returns the fallback. */
export function parseMode(mode: unknown, fallback: number): number {
  return typeof mode === 'string' ? parseInt(mode, 8) : fallback;
}

/** A problem located at the resource's declaration. */
export function declProblem(input: RenderInput, code: string, message: string): Problem {
  return { code, ...input.resource.source, message };
}

/** Throws the problem as RenderProblems. */
export function fail(input: RenderInput, code: string, message: string): never {
  throw new RenderProblems([declProblem(input, code, message)]);
}

/** The fields of a RenderedFile that come straight from the resource declaration. */
export function fileBase(
  input: RenderInput,
): Pick<RenderedFile, 'kind' | 'resource' | 'source' | 'owner' | 'group' | 'sensitive' | 'secrets' | 'adopt'> {
  const { resource } = input;
  const spec = resource.spec as { owner?: string; group?: string; adopt?: boolean };
  return {
    kind: resource.kind,
    resource: `${resource.role}/${resource.kind}/${resource.name}`,
    source: resource.source,
    owner: spec.owner ?? 'root',
    group: spec.group ?? 'root',
    sensitive: false,
    secrets: [],
    adopt: spec.adopt === true,
  };
}

/** Ensures rendered text ends with exactly one newline, so output is byte-stable whatever the template's tail. */
export function withFinalNewline(text: string): string {
  return text.length === 0 ? text : `${text.replace(/\n+$/, '')}\n`;
}
