/**
 * The JSON schema of a `systemd-unit` resource in role.yaml: a unit file or a drop-in under /etc/systemd/system.
 */
import { ADOPT_PROPERTY, TEXT_SOURCE_PROPERTIES } from '../common.js';

const UNIT = '[A-Za-z0-9:_.@-]+\\.(service|socket|timer|path|target|mount|automount|slice)';

/** A unit file name (`lod.service`) or a drop-in (`lod.service.d/10-limits.conf`). */
export const UNIT_NAME_PATTERN = `^${UNIT}$|^${UNIT}\\.d/[A-Za-z0-9:_.@-]+\\.conf$`;

/** Schema of the spec fields of a systemd-unit resource. */
export const systemdUnitSchema = {
  type: 'object',
  required: ['kind', 'name'],
  oneOf: [{ required: ['template'] }, { required: ['content'] }],
  additionalProperties: false,
  properties: {
    kind: { const: 'systemd-unit', description: 'A systemd unit file or drop-in under /etc/systemd/system.' },
    name: {
      type: 'string',
      pattern: UNIT_NAME_PATTERN,
      description:
        'The unit file name (lod.service, backup.timer) or a drop-in (caddy.service.d/10-env.conf); ' +
        'the target is /etc/systemd/system/<name>.',
    },
    ...TEXT_SOURCE_PROPERTIES,
    ...ADOPT_PROPERTY,
    enable: {
      type: 'boolean',
      description:
        'Enable the unit (systemctl enable). Default: true when the unit has an [Install] section, else false. ' +
        'Ignored for drop-ins and template units (foo@.service).',
    },
    start: {
      type: 'boolean',
      default: true,
      description:
        'Keep the unit started, and restart it when it or a file it uses changes. Default: true. ' +
        'Ignored for drop-ins (the parent unit decides) and template units.',
    },
    onStandby: {
      enum: ['install', 'run'],
      default: 'install',
      description:
        'On a host with standby: true: "install" writes the unit but neither enables nor starts it; ' +
        '"run" treats it as on an active host (e.g. a monitoring exporter). Default: "install".',
    },
    restartOn: {
      type: 'array',
      items: { type: 'string', pattern: '^/[^\\0]*$' },
      description:
        'Absolute paths of other managed files whose change restarts this unit (EnvironmentFile= paths ' +
        'are picked up from the unit text without being listed here).',
    },
  },
} as const;
