/** The file resource kind (to be implemented). */
import type { Renderer } from '../types.js';

/** Placeholder until the file renderer lands. */
export const fileRenderer: Renderer = {
  kind: 'file',
  schema: { type: 'object' },
  render() {
    throw new Error('the file renderer is not implemented yet');
  },
  async validate() {
    return [];
  },
};
