/** The ufw resource kind (to be implemented). */
import type { Renderer } from '../types.js';

/** Placeholder until the ufw renderer lands. */
export const ufwRenderer: Renderer = {
  kind: 'ufw',
  schema: { type: 'object' },
  render() {
    throw new Error('the ufw renderer is not implemented yet');
  },
  async validate() {
    return [];
  },
};
