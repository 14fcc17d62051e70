/** The app resource kind: an app's code from its own git repo, built into a release and switched atomically. */
import type { Renderer } from '../types.js';
import { renderApp } from './render.js';
import { appSchema } from './schema.js';
import { validateApps } from './validate.js';

/** Renders and validates app resources. */
export const appRenderer: Renderer = {
  kind: 'app',
  schema: appSchema,
  render: renderApp,
  validate: (input) => validateApps(input),
};
