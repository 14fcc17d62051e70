/**
 * Gathers the fleet view: this host's own status (read here), every peer's `/status` fetched over the mesh in
 * parallel with a short timeout and a size cap (each host's `address` from hosts/*.yaml and the agents' port),
 * the inventory and the commit subjects from this host's copy of the repo. The page and `status --fleet` both
 * use it. A peer that does not answer, or answers something that is not a status document, is a row that says so.
 */
import { isIP } from 'node:net';
import { commitSubjects, gitDirsOf, readInventory, type FleetInventory, type InventorySource } from './fleet-inventory.js';
import { rowFromStatus, unreachableRow, type FleetRow, type FleetView, type InventoryHost } from './fleet-model.js';

/** What gathering needs. */
export interface FleetSource extends InventorySource {
  /** This host's name. */
  host: string;
  /** This host's status document (`/status` without the HTTP). */
  selfStatus: () => Promise<object>;
  /** The URL of a peer's `/status` (undefined: its address cannot be dialled). */
  peerUrl: (host: string, address: string) => string | undefined;
  peerTimeoutMs: number;
  refreshSeconds: number;
  /** Applied to every text of the view (this host's secret values); default: none. */
  redact?: (text: string) => string;
  /** Reads a peer's status; default: HTTP GET `http://<address>:<port>/status`. */
  fetchStatus?: (url: string, timeoutMs: number) => Promise<unknown>;
}

/** The largest peer status document read. */
export const MAX_PEER_STATUS_BYTES = 1024 * 1024;

/** A DNS name or an IP literal: anything else in an `address` is not dialled. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** The URL of a peer's /status at its address, or undefined when the address is no host name or IP. */
export function peerStatusUrl(address: string, port: number, scheme: 'http' | 'https' = 'http'): string | undefined {
  if (isIP(address) === 6) return `${scheme}://[${address}]:${port}/status`;
  if (isIP(address) === 4 || HOST_NAME.test(address)) return `${scheme}://${address}:${port}/status`;
  return undefined;
}

/** GET a peer's /status: JSON, at most MAX_PEER_STATUS_BYTES, no redirects, within the timeout. */
export async function fetchPeerStatus(url: string, timeoutMs: number): Promise<unknown> {
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'error', headers: { accept: 'application/json' } });
  } catch (error) {
    throw new Error(describeFetchError(error, timeoutMs));
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`answered ${response.status}`);
  }
  const length = Number(response.headers.get('content-length') ?? 0);
  if (length > MAX_PEER_STATUS_BYTES) {
    await response.body?.cancel();
    throw new Error('answered more than 1 MiB');
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body ?? []) {
      size += chunk.byteLength;
      if (size > MAX_PEER_STATUS_BYTES) throw new Error('answered more than 1 MiB');
      chunks.push(chunk);
    }
  } catch (error) {
    throw new Error(error instanceof Error && error.message.startsWith('answered') ? error.message : describeFetchError(error, timeoutMs));
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new Error('answered something that is not JSON');
  }
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  const name = (error as { name?: string }).name;
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${formatSeconds(timeoutMs)}`;
  const code = (error as { cause?: { code?: string } }).cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'host unreachable';
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') return 'closed the connection without an answer';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'name not resolved';
  return code ? `request failed (${code})` : 'request failed';
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** The revision whose inventory the page lists: the live one, else the last attempted. */
function inventoryRevisionOf(status: object): string | undefined {
  const document = status as { lastApplied?: { revision?: unknown }; lastAttempted?: { revision?: unknown } };
  const live = document.lastApplied?.revision;
  const attempted = document.lastAttempted?.revision;
  return typeof live === 'string' ? live : typeof attempted === 'string' ? attempted : undefined;
}

function inventoryProblemOf(self: object | Error, revision: string | undefined): string {
  if (self instanceof Error) return 'this host\'s status cannot be read, so its live commit is unknown';
  return revision ? `revision ${revision.slice(0, 12)} is not in this host's copy of the repo` : 'nothing applied or attempted here yet';
}

/** Gathers the view once: the inventory, this host, every peer at the same time, the commit subjects. */
export async function gatherFleet(source: FleetSource): Promise<FleetView> {
  const generatedAt = new Date().toISOString();
  // A damaged state dir must not take the page down: this host's row says what is wrong, the peers still show.
  const self: object | Error = await source.selfStatus().catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
  const revision = self instanceof Error ? undefined : inventoryRevisionOf(self);
  const inventory: FleetInventory | undefined = revision ? await readInventory(source, revision).catch(() => undefined) : undefined;
  const selfHost: InventoryHost = inventory?.hosts.find((entry) => entry.name === source.host) ?? { name: source.host, address: '' };
  const hosts = inventory ? inventory.hosts : [selfHost];
  if (!hosts.some((entry) => entry.name === source.host)) hosts.unshift(selfHost);
  const waves = inventory?.waves ?? [];
  const fetchStatus = source.fetchStatus ?? fetchPeerStatus;
  const rows = await Promise.all(
    hosts.map(async (entry): Promise<FleetRow> => {
      if (entry.name === source.host) {
        if (!(self instanceof Error)) return rowFromStatus(entry, self, { self: true, waves });
        return { ...unreachableRow(entry, `its status cannot be read: ${self.message}`, waves), self: true, health: 'failing', healthLabel: 'status unreadable' };
      }
      const url = source.peerUrl(entry.name, entry.address);
      if (!url) return unreachableRow(entry, `its address ${JSON.stringify(entry.address.slice(0, 80))} is no host name or IP`, waves);
      try {
        const document = await fetchStatus(url, source.peerTimeoutMs);
        const host = (document as { host?: unknown } | null)?.host;
        if (typeof document !== 'object' || document === null || !Array.isArray((document as { history?: unknown }).history)) {
          return unreachableRow(entry, 'answered something that is not a status document', waves);
        }
        // The address answered for another host: a wrong address or port would show that host's state under this name.
        if (typeof host === 'string' && host !== entry.name) return unreachableRow(entry, `its address answers as ${host.slice(0, 64)}`, waves);
        return rowFromStatus(entry, document, { self: false, waves });
      } catch (error) {
        return unreachableRow(entry, (error as Error).message, waves);
      }
    }),
  );
  // In wave order (hosts in no wave last), then by name: a rollout reads from top to bottom.
  rows.sort((a, b) => (a.wave.index ?? Infinity) - (b.wave.index ?? Infinity) || a.host.localeCompare(b.host));
  const subjects = await commitSubjects(await gitDirsOf(source), rows.flatMap((row) => (row.live ? [row.live.revision] : [])));
  for (const row of rows) {
    const subject = row.live ? subjects.get(row.live.revision) : undefined;
    if (row.live && subject !== undefined) row.live.subject = subject.slice(0, 120);
  }
  const view: FleetView = {
    servedBy: source.host,
    generatedAt,
    ...(inventory ? { inventoryRevision: inventory.revision } : {}),
    ...(inventory ? {} : { inventoryProblem: inventoryProblemOf(self, revision) }),
    refreshSeconds: source.refreshSeconds,
    rows,
  };
  return source.redact ? redactView(view, source.redact) : view;
}

/** The view with `redact` applied to every string in it. */
export function redactView(view: FleetView, redact: (text: string) => string): FleetView {
  return JSON.parse(JSON.stringify(view), (_key, value: unknown) => (typeof value === 'string' ? redact(value) : value)) as FleetView;
}

/**
 * A gatherer for a server: page requests that arrive together share one gathering, and a result is reused for
 * `reuseMs`, so a reload storm costs the peers one request each.
 */
export function sharedGatherer(gather: () => Promise<FleetView>, reuseMs = 2_000): () => Promise<FleetView> {
  let last: { at: number; view: Promise<FleetView> } | undefined;
  return () => {
    const now = Date.now();
    if (last && now - last.at < reuseMs) return last.view;
    const view = gather();
    last = { at: now, view };
    view.catch(() => {
      if (last?.view === view) last = undefined;
    });
    return view;
  };
}
