/**
 * What decides a generation's bytes besides its revision: the host, the values of the secrets it used, and the
 * engine that rendered it. A fingerprint of them lets a no-op reconcile prove "same revision, same inputs, host
 * untouched" without exporting, rendering or validating anything.
 */
import { sha256 } from '../state/inventory.js';
import { ENGINE_VERSION } from '../version.js';
import type { SecretSource } from '../../renderers/template.js';

/** The fingerprint of the inputs of a host's rendering; a secret's value enters only as a hash. */
export function inputsFingerprint(host: string, secretNames: readonly string[], secrets: SecretSource): string {
  const values = [...new Set(secretNames)].sort().map((name) => `${name}=${sha256(secrets.get(name) ?? '\0missing')}`);
  return sha256(JSON.stringify({ engine: ENGINE_VERSION, host, secrets: values }));
}
