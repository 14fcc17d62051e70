/** The systemd-unit resource kind: unit files and drop-ins under /etc/systemd/system, checked by systemd-analyze. */
import type { Renderer } from '../types.js';
import { renderSystemdUnit } from './render.js';
import { systemdUnitSchema } from './schema.js';
import { validateSystemdUnits } from './validate.js';

/** Renders and validates systemd-unit resources. */
export const systemdUnitRenderer: Renderer = {
  kind: 'systemd-unit',
  schema: systemdUnitSchema,
  render: renderSystemdUnit,
  validate: (input) => validateSystemdUnits(input),
  // Verify reads the staged unit dir, which only systemd-unit may write (path policy): the verdict depends on these files only.
  verdictScope: 'kind',
  readsStaging: true,
};
