/**
 * The JSON Schemas of the desired-state files. They are the single source for the loader (ajv) and for editors
 * (`desired-state/schema/*.schema.json` are written from here by `edge-reconciler schemas --write`; a test keeps
 * them in step).
 */
import { RENDERERS } from '../../renderers/registry.js';

const SCHEMA_BASE = 'https://edge-reconciler.dev/schema';
const NAME = '^[a-z0-9][a-z0-9-]*$';

const healthCheck = {
  type: 'object',
  required: ['name', 'type'],
  properties: {
    name: { type: 'string', pattern: NAME, description: 'Unique per host; shown in status when the check fails.' },
    type: { enum: ['unit', 'http', 'tcp', 'command'] },
    unit: { type: 'string', description: 'type unit: the unit that must be active (a oneshot that exited 0 counts).' },
    url: { type: 'string', pattern: '^https?://', description: 'type http: the URL to GET.' },
    expectStatus: { type: 'integer', minimum: 100, maximum: 599, default: 200 },
    expectBody: { type: 'string', description: 'type http: a substring the body must contain.' },
    host: { type: 'string', description: 'type tcp: address to connect to.' },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    command: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'type command: argv; exit 0 is healthy.' },
    timeoutSeconds: { type: 'number', exclusiveMinimum: 0, default: 5 },
    retries: { type: 'integer', minimum: 0, default: 3 },
    standby: {
      type: 'boolean',
      default: false,
      description: 'Also run this check on standby hosts; default false: a standby starts no services, so its checks are skipped',
    },
  },
  additionalProperties: false,
  allOf: [
    { if: { properties: { type: { const: 'unit' } } }, then: { required: ['unit'] } },
    { if: { properties: { type: { const: 'http' } } }, then: { required: ['url'] } },
    { if: { properties: { type: { const: 'tcp' } } }, then: { required: ['host', 'port'] } },
    { if: { properties: { type: { const: 'command' } } }, then: { required: ['command'] } },
  ],
} as const;

/** Schema of `edge.yaml`. */
export const edgeSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: `${SCHEMA_BASE}/edge.schema.json`,
  title: 'edge.yaml',
  description: 'Repo-wide settings of an edge-reconciler desired-state repo.',
  type: 'object',
  required: ['version'],
  properties: {
    version: { const: 1, description: 'Format version of the desired-state repo.' },
    guards: {
      type: 'object',
      description: 'Guard rails; each one lifted here is lifted for every host.',
      properties: {
        allowManagementCut: { type: 'boolean', default: false, description: 'Allow UFW rules that would cut SSH over the management interface.' },
        allowSshFromAnywhere: { type: 'boolean', default: false, description: 'Allow SSH from anywhere on a public interface.' },
        managementInterface: { type: 'string', default: 'tailscale0', description: 'The interface that carries management traffic.' },
        allowHostLockout: {
          type: 'boolean',
          default: false,
          description:
            'Allow UFW rules that would refuse an SSH connection established on the host now, or that allow SSH only over a management interface the host does not have.',
        },
      },
      additionalProperties: false,
    },
    validate: {
      type: 'object',
      properties: {
        externalExecPrefixes: {
          type: 'array',
          items: { type: 'string', pattern: '^/' },
          default: ['/srv/apps', '/opt'],
          description: 'Executables under these paths are deployed outside the repo: their absence on a CI machine is not an error.',
        },
      },
      additionalProperties: false,
    },
    health: {
      type: 'object',
      properties: {
        deadlineSeconds: { type: 'number', exclusiveMinimum: 0, default: 60, description: 'Overall deadline of a host\'s health checks.' },
        intervalSeconds: { type: 'number', exclusiveMinimum: 0, default: 2, description: 'Pause between retries of one check.' },
      },
      additionalProperties: false,
    },
    waves: {
      type: 'array',
      description: 'Host groups that converge one after the other (a host waits for the earlier waves).',
      items: { type: 'array', items: { type: 'string', pattern: NAME }, minItems: 1 },
    },
  },
  additionalProperties: false,
} as const;

/** Schema of `hosts/<name>.yaml`. */
export const hostSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: `${SCHEMA_BASE}/host.schema.json`,
  title: 'hosts/<name>.yaml',
  description: 'One host: its roles, variables and the routes it offers to the router.',
  type: 'object',
  required: ['address', 'roles'],
  properties: {
    address: { type: 'string', description: 'The host\'s Tailscale address (what the router and peers dial).' },
    standby: { type: 'boolean', default: false, description: 'A warm standby installs everything but starts no service unit.' },
    roles: { type: 'array', items: { type: 'string', pattern: NAME }, minItems: 1, uniqueItems: true },
    vars: { type: 'object', description: 'Variables for templates; override the roles\' defaults.' },
    routes: {
      type: 'array',
      description: 'Domains this host serves; the router\'s Caddyfile is built from every host\'s routes.',
      items: {
        type: 'object',
        required: ['domain', 'port'],
        properties: {
          domain: { type: 'string', pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$' },
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          healthPath: { type: 'string', pattern: '^/' },
        },
        additionalProperties: false,
      },
    },
    health: { type: 'array', items: healthCheck, description: 'Health checks of this host, besides its roles\' ones.' },
  },
  additionalProperties: false,
} as const;

const hookScript = { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_./-]*$', description: 'Path relative to the role folder.' };

/**
 * One hook: its script, or `{ script, network }` for a hook that needs the host's network. An `if` rather than a
 * `oneOf`, so that a bad object form gets the errors of the object form alone.
 */
const hookSchema = {
  if: { type: 'string' },
  then: hookScript,
  else: {
    type: 'object',
    required: ['script'],
    properties: {
      script: hookScript,
      network: { type: 'boolean', default: false, description: "The host's network (still unprivileged, still read-only)." },
    },
    additionalProperties: false,
  },
};

/** Schema of `roles/<name>/role.yaml`, with every resource kind's own fields. */
export function roleSchema(): Record<string, unknown> {
  const kinds = RENDERERS.map((renderer) => renderer.kind);
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: `${SCHEMA_BASE}/role.schema.json`,
    title: 'roles/<name>/role.yaml',
    description: 'A role: resources (files a host must hold), health checks and hooks.',
    type: 'object',
    properties: {
      description: { type: 'string' },
      vars: { type: 'object', description: 'Default variables; host vars override them.' },
      resources: {
        type: 'array',
        items: {
          type: 'object',
          required: ['kind', 'name'],
          properties: { kind: { enum: kinds }, name: { type: 'string' } },
          allOf: RENDERERS.map((renderer) => ({
            if: { properties: { kind: { const: renderer.kind } }, required: ['kind'] },
            then: { $ref: `#/definitions/${renderer.kind}` },
          })),
        },
      },
      health: { type: 'array', items: healthCheck },
      hooks: {
        type: 'object',
        description: 'Executables in the role folder, run confined with EDGE_* variables (see docs/hooks.md).',
        properties: Object.fromEntries(['pre-apply', 'post-apply', 'on-failure', 'on-rollback'].map((phase) => [phase, hookSchema])),
        additionalProperties: false,
      },
    },
    additionalProperties: false,
    definitions: Object.fromEntries(RENDERERS.map((renderer) => [renderer.kind, renderer.schema])),
  };
}

/** The schemas the load stage checks files against, by what they check. */
export function repoSchemas(): Record<'edge' | 'host' | 'role', Record<string, unknown>> {
  return { edge: edgeSchema, host: hostSchema, role: roleSchema() };
}

/** Every schema by its file name under `desired-state/schema/`. */
export function allSchemas(): Record<string, Record<string, unknown>> {
  return {
    'edge.schema.json': edgeSchema,
    'host.schema.json': hostSchema,
    'role.schema.json': roleSchema(),
  };
}
