/**
 * The listen address of the agent's HTTP server (`host:port`, `[v6]:port`): parsed with node:net and normalised,
 * so that every spelling of "every interface" (`0.0.0.0`, `0`, `0.0.0`, `0x0`, `::`, `0:0::0`,
 * `::ffff:0.0.0.0`, an empty host) is recognised and refused unless `allowPublicListen` says otherwise. Only IP
 * literals and `localhost` are taken: any other name could resolve to a public or wildcard address.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** A parsed listen address; `host` is normalised (`::` for every IPv6 spelling of it, no brackets). */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * The number inet_aton(3) reads from a host (`0`, `0.0.0`, `0x7f.1`, `017.0.0.1`): how the resolver would take
 * a name made of digits; undefined when it is not such a number.
 */
function inetAton(host: string): number | undefined {
  const parts = host.split('.');
  if (parts.length > 4 || parts.some((part) => !/^(?:0x[0-9a-f]*|0[0-7]*|[1-9]\d*)$/i.test(part))) return undefined;
  const values = parts.map((part) => (/^0x/i.test(part) ? Number.parseInt(part.slice(2) || '0', 16) : part.length > 1 && part.startsWith('0') ? Number.parseInt(part, 8) : Number(part)));
  const last = values.pop() as number;
  if (values.some((value) => value > 255) || last >= 2 ** (8 * (4 - values.length))) return undefined;
  return values.reduce((sum, value, index) => sum + value * 2 ** (8 * (3 - index)), 0) + last;
}

/** Splits and normalises `host:port` or `[v6]:port`; throws an Error whose message completes `"listen" X …`. */
export function parseListenAddress(listen: string): ListenAddress {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen);
  if (!match) throw new Error('must be host:port (or [ipv6]:port)');
  const port = Number(match[3]);
  // Port 0 asks the kernel for a free port (tests; the agent logs the one it got).
  if (port > 65535) throw new Error(`has a port out of range (${port})`);
  if (match[1] !== undefined) {
    const inner = match[1];
    if (!isIPv6(inner)) throw new Error(`has "${inner}" in brackets, which is not an IPv6 address`);
    let host: string;
    try {
      host = new URL(`http://[${inner}]`).hostname.slice(1, -1);
    } catch {
      throw new Error(`has a scoped IPv6 address (${inner}), which is not supported`);
    }
    return { host, port };
  }
  const host = match[2] as string;
  // An empty host is what node binds as `::` (every interface, both families).
  if (host === '') return { host: '::', port };
  if (host === 'localhost' || isIPv4(host)) return { host, port };
  const number = inetAton(host);
  // Numbers the resolver would take (`0`, `0.0.0`) are named as the address they stand for.
  if (number !== undefined) return { host: [24, 16, 8, 0].map((shift) => Math.floor(number / 2 ** shift) % 256).join('.'), port };
  throw new Error('must name an IP address or localhost (a host name could resolve to any address)');
}

/** Splits `host:port` or `[v6]:port`; undefined when it is not a valid listen address. */
export function parseListen(listen: string): ListenAddress | undefined {
  try {
    return parseListenAddress(listen);
  } catch {
    return undefined;
  }
}

/** True for an address that means every interface: empty, 0.0.0.0, :: or ::ffff:0.0.0.0 (in any spelling). */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '::ffff:0:0';
}

/** The normalised `host:port` text of an address (`[::1]:9321`), the one the server is given. */
export function formatListen(address: ListenAddress): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}
