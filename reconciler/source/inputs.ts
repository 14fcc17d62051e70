/**
 * What decides a generation's bytes besides its revision: the host, the values of the secrets it used, and the
 * engine that rendered it. A fingerprint of them lets a no-op reconcile prove "same revision, same inputs, host
 * untouched" without exporting, rendering or validating anything.
 */
import { readFileSync } from 'node:fs';
import { sha256 } from '../state/inventory.js';
import type { SecretSource } from '../../renderers/template.js';

/** The engine's version (renderers may change output between versions): from the package's own package.json. */
export const ENGINE_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

/** The fingerprint of the inputs of a host's rendering; a secret's value enters only as a hash. */
export function inputsFingerprint(host: string, secretNames: readonly string[], secrets: SecretSource): string {
  const values = [...new Set(secretNames)].sort().map((name) => `${name}=${sha256(secrets.get(name) ?? '\0missing')}`);
  return sha256(JSON.stringify({ engine: ENGINE_VERSION, host, secrets: values }));
}
