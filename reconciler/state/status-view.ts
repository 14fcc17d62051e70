/**
 * What `status --json` and the agent's `/status` show: the status document with the state that commands change
 * between runs read where they write it (the pin of `rollback`/`unpin`, `suspend`/`resume`, the bad revisions),
 * never as the last run remembered it.
 */
import type { BadRevision, Pin, StateStore } from './state-store.js';
import { readStatus, type StatusDocument } from './status.js';
import { readSuspension, type Suspension } from './suspend.js';

/** The status document with the live pin, suspension and bad revisions. */
export interface StatusView extends StatusDocument {
  badRevisions: BadRevision[];
  suspended?: Suspension;
}

/** Reads the status view of a state dir. */
export async function readStatusView(store: StateStore, host: string): Promise<StatusView> {
  const status = await readStatus(store, host);
  delete status.pinned;
  const pinned: Pin | undefined = await store.pin();
  const suspended = await readSuspension(store.dir);
  return { ...status, ...(pinned ? { pinned } : {}), badRevisions: await store.badRevisions(), ...(suspended ? { suspended } : {}) };
}
