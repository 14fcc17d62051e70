/**
 * The JSON schema of a `caddy` resource in role.yaml: a whole Caddyfile or one site file under /etc/caddy.
 */
import { ADOPT_PROPERTY, TEXT_SOURCE_PROPERTIES } from '../common.js';

/** The name of the resource that writes the main Caddyfile. */
export const MAIN_CADDYFILE_NAME = 'Caddyfile';

/** Where caddy.service reads its config (Debian and Ubuntu packages): the one file validated as the root. */
export const MAIN_CADDYFILE_PATH = '/etc/caddy/Caddyfile';

/** Schema of the spec fields of a caddy resource. */
export const caddySchema = {
  type: 'object',
  required: ['kind', 'name'],
  oneOf: [{ required: ['template'] }, { required: ['content'] }],
  additionalProperties: false,
  properties: {
    kind: { const: 'caddy', description: 'Caddy config: the main Caddyfile or one site file.' },
    name: {
      type: 'string',
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      description:
        '"Caddyfile" for the main config (/etc/caddy/Caddyfile); any other name is a site file ' +
        '(/etc/caddy/sites/<name>.caddy).',
    },
    ...TEXT_SOURCE_PROPERTIES,
    ...ADOPT_PROPERTY,
    target: {
      type: 'string',
      pattern: '^/etc/caddy/.+$',
      description:
        'Target path under /etc/caddy. Default: /etc/caddy/Caddyfile for the name "Caddyfile", ' +
        'else /etc/caddy/sites/<name>.caddy.',
    },
    scope: {
      enum: ['main', 'site'],
      description:
        '"main": the whole Caddyfile that caddy.service loads (/etc/caddy/Caddyfile), validated as the root; ' +
        '"site": site blocks the main Caddyfile imports. Default: "main" for the name "Caddyfile", else "site".',
    },
  },
} as const;
