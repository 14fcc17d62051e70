/**
 * What the firewall guard needs to know of the live host's network: the SSH connections established right now
 * (from /proc/net/tcp and tcp6, the same table `ss -tn state established '( sport = :22 )'` reads) with the
 * interface each arrived on, and the network interfaces that exist (/sys/class/net). Read only; under a sandbox
 * root these are not the live host's, so nothing is known there unless a test hands the facts in.
 */
import { readdir, readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';

/** The port SSH sessions are looked for on. */
export const SSH_PORT = 22;

/** One established TCP connection to the host's SSH port. */
export interface SshSession {
  /** The host's own address of the connection. */
  local: string;
  /** The client's address. */
  peer: string;
  /** The interface holding `local`, when known. */
  interface?: string;
}

/** The live network facts; undefined where they cannot be known. */
export interface NetworkFacts {
  /** SSH connections established now, or undefined when unknown. */
  sshSessions(): Promise<SshSession[] | undefined>;
  /** The names of the host's network interfaces, or undefined when unknown. */
  interfaces(): Promise<string[] | undefined>;
}

/** Facts that are never known: for sandbox roots, whose firewall is not the live host's. */
export const UNKNOWN_NETWORK: NetworkFacts = {
  sshSessions: () => Promise.resolve(undefined),
  interfaces: () => Promise.resolve(undefined),
};

/** The facts of the machine this process runs on: /proc, /sys and the kernel's interface list. */
export const LIVE_NETWORK: NetworkFacts = {
  async sshSessions() {
    const byAddress = interfaceOfAddress();
    const sessions: SshSession[] = [];
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      const text = await readFile(table, 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      for (const entry of parseProcNetTcp(text)) {
        if (entry.state !== ESTABLISHED || entry.localPort !== SSH_PORT) continue;
        const iface = byAddress.get(entry.local);
        sessions.push({ local: entry.local, peer: entry.peer, ...(iface ? { interface: iface } : {}) });
      }
    }
    return sessions;
  },
  async interfaces() {
    return readdir(join('/sys/class/net')).catch(() => undefined);
  },
};

/** The network facts for a host root: the live ones for `/`, none for a sandbox root. */
export function networkFactsFor(root: string): NetworkFacts {
  return root === '/' ? LIVE_NETWORK : UNKNOWN_NETWORK;
}

const ESTABLISHED = 1;

/** One row of /proc/net/tcp or tcp6. */
export interface TcpEntry {
  local: string;
  localPort: number;
  peer: string;
  peerPort: number;
  /** The kernel's TCP state number (1 = established). */
  state: number;
}

/** Parses /proc/net/tcp or tcp6: addresses in the kernel's hex, IPv4-mapped IPv6 shown as IPv4. */
export function parseProcNetTcp(text: string): TcpEntry[] {
  const entries: TcpEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const [, local = '', remote = '', state = ''] = line.trim().split(/\s+/);
    const [localHex = '', localPort = ''] = local.split(':');
    const [peerHex = '', peerPort = ''] = remote.split(':');
    const localAddress = hexAddress(localHex);
    const peerAddress = hexAddress(peerHex);
    if (!localAddress || !peerAddress) continue;
    entries.push({
      local: localAddress,
      localPort: parseInt(localPort, 16),
      peer: peerAddress,
      peerPort: parseInt(peerPort, 16),
      state: parseInt(state, 16),
    });
  }
  return entries;
}

/** An address of /proc/net/tcp*: 8 hex digits (IPv4, little-endian) or 32 (IPv6, four little-endian words). */
function hexAddress(hex: string): string | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(hex)) return littleEndianWord(hex).join('.');
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) return undefined;
  const bytes = [0, 8, 16, 24].flatMap((offset) => littleEndianWord(hex.slice(offset, offset + 8)));
  if (bytes.slice(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return bytes.slice(12).join('.');
  }
  const groups: string[] = [];
  for (let index = 0; index < 16; index += 2) groups.push((((bytes[index] ?? 0) << 8) | (bytes[index + 1] ?? 0)).toString(16));
  return compressIpv6(groups);
}

function littleEndianWord(hex: string): number[] {
  return [6, 4, 2, 0].map((offset) => parseInt(hex.slice(offset, offset + 2), 16));
}

function compressIpv6(groups: string[]): string {
  let best = { start: -1, length: 0 };
  for (let start = 0; start < groups.length; start++) {
    let length = 0;
    while (groups[start + length] === '0') length++;
    if (length > best.length && length > 1) best = { start, length };
  }
  if (best.start < 0) return groups.join(':');
  return `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.length).join(':')}`;
}

function interfaceOfAddress(): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    for (const address of addresses ?? []) map.set(address.address, name);
  }
  return map;
}
