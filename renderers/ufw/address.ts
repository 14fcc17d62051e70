/**
 * Addresses and ports of ufw rules: parsing, checking and matching, with node:net (no hand-written CIDR maths).
 */
import { BlockList, isIP } from 'node:net';

/** An address or network of one family. */
export interface Network {
  family: 4 | 6;
  /** Matches the addresses of the network. */
  contains(address: string): boolean;
}

/** Parses `10.0.0.0/8`, `2001:db8::/32`, `203.0.113.7` or `::1`; undefined when it is none of these. */
export function parseNetwork(text: string): Network | undefined {
  const [address = '', prefixText, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^[0-9]{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  list.addSubnet(address, prefix, type);
  return { family, contains: (candidate) => isIP(candidate) === family && list.check(candidate, type) };
}

/** A port or an inclusive range. */
export interface PortRange {
  start: number;
  end: number;
}

/** Parses `22` or `8000:8010` (numbers only); undefined for anything else. */
export function parsePortRange(text: string): PortRange | undefined {
  const match = /^([0-9]{1,5})(?::([0-9]{1,5}))?$/.exec(text);
  if (!match) return undefined;
  const start = Number(match[1]);
  return { start, end: match[2] === undefined ? start : Number(match[2]) };
}

/** Why a port spec is unusable, or undefined when it is fine. `hasProto` tells whether the rule names tcp/udp. */
export function portProblem(text: string, hasProto: boolean): string | undefined {
  const range = parsePortRange(text);
  if (!range) return `port "${text}" is not a number or a range like 8000:8010`;
  for (const port of [range.start, range.end]) {
    if (port < 1 || port > 65535) return `port ${port} is outside 1-65535`;
  }
  if (range.start > range.end) return `port range ${text} starts after it ends`;
  if (range.start !== range.end && !hasProto) return `port range ${text} needs proto tcp or udp (ufw refuses it otherwise)`;
  return undefined;
}
