/**
 * The engine's version. The bundled executable gets it from the bundler (`packaging/build-executable.mjs` defines
 * `EDGE_RECONCILER_VERSION`); from the sources (`node dist/...`) it is read from the package's own package.json.
 */
import { readFileSync } from 'node:fs';

declare const EDGE_RECONCILER_VERSION: string | undefined;

/** The version of this build, e.g. `0.1.0`; `unknown` when neither the bundler nor package.json tells. */
export const ENGINE_VERSION: string = (() => {
  if (typeof EDGE_RECONCILER_VERSION === 'string') return EDGE_RECONCILER_VERSION;
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();
