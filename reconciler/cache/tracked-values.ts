/**
 * Which values a render used: plain data (YAML values, the template data) is handed to a renderer behind a proxy
 * that records every read (a property's value or its type, whether a key exists, an object's keys). A render cache
 * entry keeps that list; it still holds for new data when every recorded read gives the same answer again. So a
 * template that prints `vars.app_5.port` is not rendered again when `vars.app_6.release` changes.
 */

/** One recorded read: what was asked at which path, and the answer (as text). */
export interface ValueRead {
  /**
   * `get`: a value (a primitive as JSON, an object as its type); `has`: whether the key exists (`in`); `own`:
   * whether it is an own property; `keys`: an object's own keys.
   */
  op: 'get' | 'has' | 'own' | 'keys';
  path: string[];
  answer: string;
}

/** The reads of one tracking session, in order, each once. */
export class ReadLog {
  private readonly reads = new Map<string, ValueRead>();
  /** False once the session ended: reads through proxies that escaped are not recorded (nor needed). */
  active = true;

  record(op: ValueRead['op'], path: string[], answer: string): void {
    if (!this.active) return;
    const id = `${op}\0${path.join('\0')}`;
    if (!this.reads.has(id)) this.reads.set(id, { op, path, answer });
  }

  /** Every read, for the cache entry. */
  list(): ValueRead[] {
    return [...this.reads.values()];
  }
}

/** What joins a read's op, answer and path segments in its encoded line (a segment holding it is never stored). */
export const SEPARATOR = '\u0001';

/** A read as one line of text (`op`, path segments and answer joined by U+0001): a third of the JSON objects' size. */
export function encodeRead(read: ValueRead): string {
  return [read.op, read.answer, ...read.path].join(SEPARATOR);
}

/** The answer text of a value: primitives as JSON, objects by type (their members are reads of their own). */
function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'function';
  if (typeof value === 'bigint') return `bigint:${value}`;
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? '[array]' : '[object]';
  return JSON.stringify(value) ?? 'undefined';
}

function isTrackable(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return Array.isArray(value) || proto === Object.prototype || proto === null;
}

/**
 * `value` behind a recording proxy (plain objects and arrays, recursively); other values as they are. Reads are
 * recorded relative to `path`.
 */
export function tracked<T>(value: T, log: ReadLog, path: string[] = []): T {
  if (!isTrackable(value)) return value;
  // A new proxy per read, never one per object: an object reached by two paths is recorded under each.
  const wrap = (child: unknown, childPath: string[]): unknown => (isTrackable(child) ? makeProxy(child, childPath) : child);
  const makeProxy = (target: object, at: string[]): object =>
    new Proxy(target, {
      get(object, key, receiver) {
        const result: unknown = Reflect.get(object, key, receiver);
        if (typeof key === 'symbol' || typeof result === 'function') return result;
        log.record('get', [...at, key], describe(result));
        return wrap(result, [...at, key]);
      },
      has(object, key) {
        const result = Reflect.has(object, key);
        if (typeof key !== 'symbol') log.record('has', [...at, key], String(result));
        return result;
      },
      ownKeys(object) {
        const keys = Reflect.ownKeys(object);
        log.record('keys', at, JSON.stringify(keys.filter((key) => typeof key === 'string')));
        return keys;
      },
      getOwnPropertyDescriptor(object, key) {
        const descriptor = Reflect.getOwnPropertyDescriptor(object, key);
        if (typeof key === 'symbol') return descriptor;
        log.record('own', [...at, key], String(descriptor !== undefined));
        if (!descriptor || !('value' in descriptor)) return descriptor;
        log.record('get', [...at, key], describe(descriptor.value));
        // A proxy must report a non-configurable property as it is (an array's length): never wrapped.
        return descriptor.configurable ? { ...descriptor, value: wrap(descriptor.value, [...at, key]) } : descriptor;
      },
      set() {
        throw new TypeError('a renderer may not change the data it is given');
      },
      deleteProperty() {
        throw new TypeError('a renderer may not change the data it is given');
      },
      defineProperty() {
        throw new TypeError('a renderer may not change the data it is given');
      },
    });
  return wrap(value, path) as T;
}

/** Gives each recorded read's answer again against `roots` (by the first path segment); true when all agree. */
export function readsHold(reads: readonly ValueRead[], roots: Readonly<Record<string, unknown>>): boolean {
  return encodedReadsHold(reads.map(encodeRead), roots);
}

/**
 * `readsHold` for reads as the cache stores them (`encodeRead`): each line is walked where it lies, segment by
 * segment, without splitting it into arrays (a one-change run at 1000 apps checks ~20 000 of them).
 */
export function encodedReadsHold(reads: readonly string[], roots: Readonly<Record<string, unknown>>): boolean {
  for (const text of reads) {
    if (!encodedHolds(text, roots)) return false;
  }
  return true;
}

function encodedHolds(text: string, roots: Readonly<Record<string, unknown>>): boolean {
  const opEnd = text.indexOf(SEPARATOR);
  const answerEnd = opEnd < 0 ? -1 : text.indexOf(SEPARATOR, opEnd + 1);
  // Every read the log keeps names a root: a line without a path is not one of them.
  if (answerEnd < 0) return false;
  const op = text.slice(0, opEnd);
  const recorded = text.slice(opEnd + 1, answerEnd);
  let at = answerEnd + 1;
  let next = text.indexOf(SEPARATOR, at);
  const root = next < 0 ? text.slice(at) : text.slice(at, next);
  let current: unknown = roots[root];
  // A path of the root alone: its last segment is the root's name (as the path's last element).
  if (next < 0 && op !== 'keys') return lastAnswer(op, current, root) === recorded;
  while (next >= 0) {
    at = next + 1;
    next = text.indexOf(SEPARATOR, at);
    const segment = next < 0 ? text.slice(at) : text.slice(at, next);
    if (next < 0 && op !== 'keys') return lastAnswer(op, current, segment) === recorded;
    if (typeof current !== 'object' || current === null) return recorded === '\0unreachable';
    current = Reflect.get(current, segment);
  }
  if (typeof current !== 'object' || current === null) return recorded === '\0unreachable';
  return JSON.stringify(Reflect.ownKeys(current).filter((key) => typeof key === 'string')) === recorded;
}

/** The answer of a `get`, `has` or `own` read of `last` on `current`. */
function lastAnswer(op: string, current: unknown, last: string): string {
  if (typeof current !== 'object' || current === null) return '\0unreachable';
  if (op === 'has') return String(Reflect.has(current, last));
  if (op === 'own') return String(Object.prototype.hasOwnProperty.call(current, last));
  return describe(Reflect.get(current, last));
}
