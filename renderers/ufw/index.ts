/** The ufw resource kind: firewall defaults and rules as data, guarded against locking out management. */
import type { Renderer } from '../types.js';
import { renderUfw } from './render.js';
import { ufwSchema } from './schema.js';
import { validateUfw } from './validate.js';

/** Renders and validates ufw resources. */
export const ufwRenderer: Renderer = {
  kind: 'ufw',
  schema: ufwSchema,
  render: renderUfw,
  validate: (input) => validateUfw(input),
  // The rules files alone: the verdict depends on these files only.
  verdictScope: 'kind',
  readsStaging: true,
};
