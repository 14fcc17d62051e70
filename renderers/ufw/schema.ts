/**
 * The JSON schema of a `ufw` resource in role.yaml: default policies and rules as data, never as free text.
 */

import { ADOPT_PROPERTY } from '../common.js';

const POLICY = { enum: ['allow', 'deny', 'reject'] } as const;

/** Interface names as the kernel allows them (at most 15 characters); ufw refuses aliases such as `eth0:1`. */
export const INTERFACE_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$';

/** One rule of a ufw resource. */
const ruleSchema = {
  type: 'object',
  required: ['action'],
  additionalProperties: false,
  properties: {
    action: {
      enum: ['allow', 'deny', 'reject', 'limit'],
      description: 'What matching packets get; "limit" allows but refuses sources that open 6+ connections in 30 s.',
    },
    direction: { enum: ['in', 'out'], default: 'in', description: 'Incoming or outgoing traffic. Default "in".' },
    interface: {
      type: 'string',
      pattern: INTERFACE_PATTERN,
      description: 'Only traffic on this interface, e.g. "tailscale0". Default: every interface.',
    },
    port: {
      description: 'Destination port (22) or range ("8000:8010"; a range needs proto). Default: every port.',
      oneOf: [
        { type: 'integer', minimum: 1, maximum: 65535 },
        { type: 'string', pattern: '^[0-9]{1,5}(:[0-9]{1,5})?$' },
      ],
    },
    proto: { enum: ['tcp', 'udp'], description: 'Protocol. Default: both (and every other protocol).' },
    from: {
      type: 'string',
      pattern: '^[0-9A-Fa-f:./]+$|^any$',
      description: 'Source IPv4/IPv6 address or CIDR, or "any" (the default).',
    },
    to: {
      type: 'string',
      pattern: '^[0-9A-Fa-f:./]+$|^any$',
      description: 'Destination IPv4/IPv6 address or CIDR, or "any" (the default).',
    },
    comment: {
      type: 'string',
      pattern: "^[^'\\n\\r\\\\]*$",
      maxLength: 200,
      description: 'Shown by `ufw status`; no single quotes, backslashes or newlines.',
    },
  },
} as const;

/** Schema of the spec fields of a ufw resource. */
export const ufwSchema = {
  type: 'object',
  required: ['kind', 'name'],
  additionalProperties: false,
  properties: {
    kind: { const: 'ufw', description: 'Firewall rules as data, written to /etc/edge-reconciler/ufw/<name>.rules.' },
    ...ADOPT_PROPERTY,
    name: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9._-]*$',
      description: 'Names the rules file; files are applied in path order, so a name like "10-base" orders them.',
    },
    defaults: {
      type: 'object',
      additionalProperties: false,
      description:
        'Default policies; unset ones keep ufw\'s own (deny incoming, allow outgoing, deny routed). ' +
        'At most one ufw resource per host may set them. "allow" incoming is always refused.',
      properties: {
        incoming: { ...POLICY, description: 'Policy for incoming packets no rule matches.' },
        outgoing: { ...POLICY, description: 'Policy for outgoing packets no rule matches.' },
        routed: { ...POLICY, description: 'Policy for forwarded packets.' },
      },
    },
    rules: {
      type: 'array',
      items: ruleSchema,
      default: [],
      description: 'Rules in evaluation order: ufw applies the first rule that matches a packet.',
    },
  },
} as const;
