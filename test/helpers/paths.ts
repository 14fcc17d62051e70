/** Paths of the project, from compiled tests in dist/test/... */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** The project root (the folder holding package.json). */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The bundled example desired-state repo. */
export const EXAMPLE_REPO = join(PROJECT_ROOT, 'desired-state');

/** The compiled CLI entry point. */
export const CLI = join(PROJECT_ROOT, 'dist', 'reconciler', 'cli', 'main.js');
