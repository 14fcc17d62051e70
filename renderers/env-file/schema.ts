/**
 * The JSON schema of an `env-file` resource in role.yaml: a systemd EnvironmentFile= with host-local secrets.
 */
import { ADOPT_PROPERTY, TEXT_SOURCE_PROPERTIES } from '../common.js';

/** Where env files live; each unit reads its own with `EnvironmentFile=`. */
export const ENV_DIR = '/etc/edge-reconciler/env';

/** Schema of the spec fields of an env-file resource. */
export const envFileSchema = {
  type: 'object',
  required: ['kind', 'name'],
  oneOf: [{ required: ['template'] }, { required: ['content'] }],
  additionalProperties: false,
  properties: {
    kind: {
      const: 'env-file',
      description: 'KEY=VALUE lines for systemd EnvironmentFile=; mode 0600 root:root; may use {{secret "NAME"}}.',
    },
    name: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9._-]*$',
      description: 'Names the file: /etc/edge-reconciler/env/<name>.env unless target says otherwise.',
    },
    ...TEXT_SOURCE_PROPERTIES,
    ...ADOPT_PROPERTY,
    target: {
      type: 'string',
      pattern: '^/etc/edge-reconciler/env/[^/\\0]+$',
      description: 'Target path directly under /etc/edge-reconciler/env. Default: /etc/edge-reconciler/env/<name>.env.',
    },
  },
} as const;
