/** The env-file resource kind (to be implemented). */
import type { Renderer } from '../types.js';

/** Placeholder until the env-file renderer lands. */
export const envFileRenderer: Renderer = {
  kind: 'env-file',
  schema: { type: 'object' },
  render() {
    throw new Error('the env-file renderer is not implemented yet');
  },
  async validate() {
    return [];
  },
};
