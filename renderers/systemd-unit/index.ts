/** The systemd-unit resource kind (to be implemented). */
import type { Renderer } from '../types.js';

/** Placeholder until the systemd-unit renderer lands. */
export const systemdUnitRenderer: Renderer = {
  kind: 'systemd-unit',
  schema: { type: 'object' },
  render() {
    throw new Error('the systemd-unit renderer is not implemented yet');
  },
  async validate() {
    return [];
  },
};
