/**
 * A state dir belongs to one host: the one its generations were made for. A run for another host name (a mistyped
 * `--host`) is refused before it takes the lock, so it can neither plan against this host's inventory nor land in
 * its status history.
 */
import { EdgeError } from '../errors.js';
import type { StateStore } from './state-store.js';
import { readStatus } from './status.js';

/** The host the state dir's generations belong to (the live one's, else the newest's); undefined when it has none. */
export async function stateDirHost(store: StateStore): Promise<string | undefined> {
  const live = (await readStatus(store, '').catch(() => undefined))?.lastApplied?.generation;
  const newest = (await store.generations()).at(-1);
  for (const generation of [live, newest]) {
    if (generation === undefined) continue;
    const meta = await store.readGeneration(generation).catch(() => undefined);
    if (meta?.host) return meta.host;
  }
  return undefined;
}

/** Refuses with HOST_MISMATCH when the state dir belongs to a host other than `host`. */
export async function refuseOtherHost(store: StateStore, host: string): Promise<void> {
  const owner = await stateDirHost(store);
  if (owner === undefined || owner === host) return;
  throw new EdgeError(
    'HOST_MISMATCH',
    `the state dir ${store.dir} belongs to host ${owner}, and this run is for ${host}: check --host, or give ${host} a state dir of its own`,
    { stage: 'fetch', retry: 'invalid' },
  );
}
