/**
 * The JSON schema of an `app` resource in role.yaml: an app's code, pulled from its own git repo at a pinned commit
 * (or a tag, or the head of a followed branch), built, and switched live through `/srv/apps/<name>/current`.
 */
import { ADOPT_PROPERTY } from '../common.js';
import { UNIT_NAME_PATTERN } from '../file/schema.js';

/** A value that is either exactly what `pattern` says or holds handlebars (checked again after rendering). */
function orTemplate(pattern: string): string {
  return `^(${pattern.replace(/^\^|\$$/g, '')}|.*\\{\\{.*\\}\\}.*)$`;
}

/** A full commit SHA. */
export const SHA_PATTERN = '^[0-9a-f]{40}$';

/** A shared dir's name: one path segment. */
export const SHARED_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]*$';

/** A user name as useradd takes it. */
export const USER_PATTERN = '^[a-z_][a-z0-9_-]*$';

/** Schema of the spec fields of an app resource. */
export const appSchema = {
  type: 'object',
  required: ['kind', 'name', 'repo'],
  oneOf: [{ required: ['rev'] }, { required: ['tag'] }, { required: ['follow'] }],
  additionalProperties: false,
  properties: {
    kind: { const: 'app', description: 'An app release: code from its own git repo, built, switched atomically.' },
    name: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9-]*$',
      description: 'The app: its dir is /srv/apps/<name> (releases/, shared/, current).',
    },
    repo: {
      type: 'string',
      minLength: 1,
      description:
        'The app\'s git repo: an https or ssh URL or an absolute path. Credentials and URL rewrites come from the ' +
        'host config (apps.insteadOf, apps.auth), never from here.',
      examples: ['https://git.example.com/edge/lod.git'],
    },
    rev: {
      type: 'string',
      pattern: orTemplate(SHA_PATTERN),
      description: 'The commit to run: a full 40-hex SHA (handlebars allowed, e.g. "{{lod.rev}}" from host vars).',
    },
    tag: {
      type: 'string',
      minLength: 1,
      description: 'A tag of the app repo, resolved to its commit at each reconcile; the SHA is recorded.',
    },
    follow: {
      type: 'string',
      minLength: 1,
      description:
        'A branch of the app repo to follow: its head is resolved at each reconcile and recorded; a push webhook ' +
        'from the app repo triggers a reconcile.',
    },
    user: {
      type: 'string',
      pattern: USER_PATTERN,
      description: 'The user the app runs and builds as (default: the app\'s name). A missing one is created as a system user.',
    },
    build: {
      type: 'object',
      required: ['command'],
      additionalProperties: false,
      description: 'How a release is built, confined: only the release dir writable, private /tmp, no network unless declared.',
      properties: {
        command: {
          type: 'array',
          minItems: 1,
          items: { type: 'string', minLength: 1 },
          description: 'argv (no shell), run in the release dir, e.g. [python3, -m, compileall, -q, .].',
        },
        timeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 300, description: 'The build is killed past this.' },
        env: {
          type: 'object',
          additionalProperties: { type: 'string' },
          propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
          description: 'Environment of the build (no secrets: the secret scan applies).',
        },
        network: { type: 'boolean', default: false, description: 'Give the build the host\'s network.' },
      },
    },
    shared: {
      type: 'array',
      uniqueItems: true,
      items: { type: 'string', pattern: SHARED_NAME_PATTERN },
      description: 'Persistent dirs /srv/apps/<name>/shared/<dir> (owned by the user), symlinked as <release>/<dir>.',
    },
    keep: {
      type: 'integer',
      minimum: 2,
      maximum: 100,
      default: 5,
      description: 'Releases kept on the host; older ones are removed after a good apply (never the live one or the one before it).',
    },
    units: {
      type: 'array',
      uniqueItems: true,
      items: { type: 'string', pattern: UNIT_NAME_PATTERN },
      description: 'Units restarted when the live release changes (a standby host restarts nothing).',
    },
    adopt: {
      ...ADOPT_PROPERTY.adopt,
      description: 'Take over a `current` symlink that exists but no generation managed (an app deployed by hand before); without it, such a link is never replaced.',
    },
  },
} as const;
