/** The caddy resource kind (to be implemented). */
import type { Renderer } from '../types.js';

/** Placeholder until the caddy renderer lands. */
export const caddyRenderer: Renderer = {
  kind: 'caddy',
  schema: { type: 'object' },
  render() {
    throw new Error('the caddy renderer is not implemented yet');
  },
  async validate() {
    return [];
  },
};
