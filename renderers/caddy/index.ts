/** The caddy resource kind: the main Caddyfile or site files under /etc/caddy, checked by `caddy validate`. */
import type { Renderer } from '../types.js';
import { renderCaddy } from './render.js';
import { caddySchema } from './schema.js';
import { validateCaddy } from './validate.js';
import { caddyVerdictText } from './verdict-text.js';

/** Renders and validates caddy resources. */
export const caddyRenderer: Renderer = {
  kind: 'caddy',
  schema: caddySchema,
  render: renderCaddy,
  validate: (input) => validateCaddy(input),
  verdictText: caddyVerdictText,
};
