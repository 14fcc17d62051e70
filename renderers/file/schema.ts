/**
 * The JSON schema of a `file` resource in role.yaml: any other config file (journald drop-in, logrotate, sysctl,
 * tmpfiles.d) with owner, mode, an optional validate command and an optional action when it changes.
 */
import { ADOPT_PROPERTY, OWNERSHIP_PROPERTIES, TEXT_SOURCE_PROPERTIES } from '../common.js';

/** A systemd unit name, as onChange may restart or reload it. */
export const UNIT_NAME_PATTERN =
  '^[A-Za-z0-9:_.@\\\\-]+\\.(service|socket|timer|path|mount|automount|swap|target|slice|scope)$';

const unitList = {
  type: 'array',
  items: { type: 'string', pattern: UNIT_NAME_PATTERN },
} as const;

/** Schema of the spec fields of a file resource. */
export const fileSchema = {
  type: 'object',
  required: ['kind', 'name', 'target'],
  oneOf: [{ required: ['template'] }, { required: ['content'] }],
  additionalProperties: false,
  properties: {
    kind: { const: 'file', description: 'Any other config file under the allowed roots.' },
    name: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9._-]*$',
      description: 'Names the resource (unique per role and kind); the path comes from target.',
    },
    target: {
      type: 'string',
      pattern: '^/[^\\0]*[^/]$',
      description: 'Absolute target path; must lie under one of the host\'s allowed roots (e.g. /etc/logrotate.d).',
    },
    ...TEXT_SOURCE_PROPERTIES,
    ...ADOPT_PROPERTY,
    ...OWNERSHIP_PROPERTIES,
    mode: { ...OWNERSHIP_PROPERTIES.mode, default: '0644', description: 'Octal file mode. Default "0644".' },
    owner: { ...OWNERSHIP_PROPERTIES.owner, description: 'Owning user. Default root.' },
    group: { ...OWNERSHIP_PROPERTIES.group, description: 'Owning group. Default root.' },
    validate: {
      description:
        'A command that checks the staged file before anything is applied; "%s" is replaced by the staged ' +
        'file\'s path. An argv array (["logrotate", "--debug", "%s"]) or a string split on whitespace. ' +
        'Exit 0 means valid.',
      oneOf: [
        { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, contains: { type: 'string', pattern: '%s' } },
        { type: 'string', pattern: '^\\s*\\S+.*%s' },
      ],
    },
    onChange: {
      type: 'object',
      additionalProperties: false,
      description: 'What activation does after this file changed (in this order: run, reload, restart).',
      properties: {
        restart: { ...unitList, description: 'Units to restart.' },
        reload: { ...unitList, description: 'Units to reload (systemctl reload).' },
        run: {
          type: 'array',
          items: { type: 'string', minLength: 1 },
          minItems: 1,
          description: 'One command (argv, no shell) to run, e.g. ["systemd-tmpfiles", "--create", "<target>"].',
        },
      },
    },
  },
} as const;
