/**
 * The transaction: how a set of files goes live so that a crash at any point leaves the host on exactly the old
 * or the new generation. Before anything changes, every file that will be overwritten or removed is copied into
 * the state dir and a journal lists every step with the before and after state of each path. Each file then goes
 * in atomically (temp beside the target, made durable, renamed over it). At startup a leftover journal is undone
 * from the backups, byte for byte; a health failure undoes it the same way.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { crashPoint } from '../host/crash-points.js';
import { makeDurable } from '../host/durable.js';
import { HostBatch, type Host, type LiveFile, type StagedWrite } from '../host/host.js';
import { sha256, type ManagedFile } from './inventory.js';
import type { ResourceKind } from '../model.js';
import { stateDamaged, writeFileAtomic, type StateStore } from './state-store.js';

/** The state of one path at one moment. */
export interface FileState {
  sha256: string;
  mode: number;
  uid: number;
  gid: number;
}

/** One step of a transaction. */
export interface JournalOp {
  path: string;
  kind: ResourceKind;
  action: 'write' | 'delete';
  /** What was there before (null: nothing); the bytes are in the backup dir. */
  before: FileState | null;
  /** What will be there after (null: nothing). */
  after: FileState | null;
  /** The path is a symlink (an app's `current`): the state is of its target text, switched by rename(2). */
  link?: boolean;
}

/** Where a transaction is; undo is the same from every phase. */
export type JournalPhase = 'apply' | 'activate' | 'health';

/** `journal.json`: present only while a transaction is in flight. */
export interface Journal {
  version: 1;
  generation: number;
  revision: string;
  /** The generation that was live before (undefined on a fresh host). */
  from?: number;
  phase: JournalPhase;
  startedAt: string;
  ops: JournalOp[];
  /** Directories the transaction creates on the host, parents first: undo removes them again when empty. */
  createdDirs?: string[];
}

/** What to do about a journal that cannot be used. */
const JOURNAL_FIX =
  'the interrupted transaction cannot be undone automatically: compare the managed files with txn/backup/ and the ' +
  'generations, put them back by hand, then move journal.json aside and run `edge-reconciler recover`';

function stateOf(live: LiveFile): FileState {
  return { sha256: sha256(live.content), mode: live.mode, uid: live.uid, gid: live.gid };
}

/** A link's state is its target alone: a symlink's own mode and owner mean nothing. */
function linkState(target: string | Buffer): FileState {
  return { sha256: sha256(target), mode: 0o777, uid: 0, gid: 0 };
}

/** What stands at an op's path now, in the terms of its journal states (null: nothing of its type). */
function liveState(live: LiveFile | undefined, link: boolean | undefined): FileState | null {
  if (link) return live?.type === 'symlink' ? linkState(live.content) : null;
  return live?.type === 'file' ? stateOf(live) : null;
}

/** A transaction in flight. */
export class Transaction {
  private constructor(
    private readonly store: StateStore,
    private readonly host: Host,
    readonly journal: Journal,
  ) {}

  /**
   * Starts a transaction: backs up what each op will replace or remove, then writes the journal. Nothing on
   * the host has changed when this returns.
   */
  static async begin(
    store: StateStore,
    host: Host,
    header: Pick<Journal, 'generation' | 'revision' | 'from'>,
    writes: readonly ManagedFile[],
    deletes: readonly { path: string; kind: ResourceKind; link?: boolean }[],
  ): Promise<Transaction> {
    await rm(store.txnDir, { recursive: true, force: true });
    await mkdir(store.backupDir, { recursive: true, mode: 0o700 });
    const ops: JournalOp[] = [];
    const backup = async (path: string, link = false): Promise<FileState | null> => {
      const live = await host.read(path);
      if (!live) return null;
      const expected = link ? 'symlink' : 'file';
      if (live.type !== expected) throw new Error(`${path} is a ${live.type}, not a ${expected}; refusing to replace it`);
      const copy = join(store.backupDir, path);
      await mkdir(dirname(copy), { recursive: true, mode: 0o700 });
      // A link's backup is its target text.
      await writeFileAtomic(copy, live.content);
      return link ? linkState(live.content) : stateOf(live);
    };
    for (const file of writes) {
      const uid = host.ids.uid(file.owner) ?? 0;
      const gid = host.ids.gid(file.group) ?? 0;
      ops.push({
        path: file.path,
        kind: file.kind,
        action: 'write',
        before: await backup(file.path, file.link),
        after: file.link ? linkState(file.content) : { sha256: sha256(file.content), mode: file.mode, uid, gid },
        ...(file.link ? { link: true } : {}),
      });
    }
    for (const file of deletes) {
      ops.push({ path: file.path, kind: file.kind, action: 'delete', before: await backup(file.path, file.link), after: null, ...(file.link ? { link: true } : {}) });
    }
    crashPoint('apply:backups');
    const createdDirs = await missingDirs(host, writes.map((file) => file.path));
    const journal: Journal = { version: 1, ...header, phase: 'apply', startedAt: new Date().toISOString(), ops, createdDirs };
    await store.writeJson(store.journalPath, journal);
    crashPoint('apply:journal');
    return new Transaction(store, host, journal);
  }

  /** Resumes the transaction a crash left behind, or undefined when there is none. */
  static async pending(store: StateStore, host: Host): Promise<Transaction | undefined> {
    const journal = await store.readJson<Journal>(store.journalPath, JOURNAL_FIX);
    if (journal === undefined) return undefined;
    const damage = journalDamage(journal);
    if (damage) throw stateDamaged(store.journalPath, damage, JOURNAL_FIX);
    return new Transaction(store, host, journal);
  }

  /**
   * Puts the files in place. Every new file is first written beside its target and all of them are made durable at
   * once (host/durable.ts); then, op by op, each is renamed over its target or the path removed; the directories are
   * fsynced once each at the end. The journal stays until the transaction commits, so a power cut anywhere in
   * between is undone, temp files included.
   */
  async applyFiles(contentOf: (path: string) => string): Promise<void> {
    const batch = new HostBatch();
    const staged = new Map<JournalOp, StagedWrite>();
    for (const op of this.journal.ops) {
      if (op.action === 'write' && op.after && !op.link) {
        staged.set(op, await this.host.stageWrite(op.path, contentOf(op.path), op.after.mode, op.after.uid, op.after.gid, batch));
      }
    }
    await makeDurable([...staged.values()].map((write) => write.temp));
    crashPoint('apply:staged');
    let index = 0;
    for (const op of this.journal.ops) {
      const write = staged.get(op);
      if (write) await this.host.commitWrite(write, batch);
      else if (op.action === 'write' && op.after) await this.host.switchSymlink(op.path, contentOf(op.path), batch);
      else await this.host.remove(op.path, batch);
      crashPoint(`apply:op:${index++}`);
    }
    await batch.flush();
  }

  /** Records progress; undo is the same from every phase, the phase is for status and logs. */
  async setPhase(phase: JournalPhase): Promise<void> {
    this.journal.phase = phase;
    await this.store.writeJson(this.store.journalPath, this.journal);
  }

  /** The transaction is final: forget the journal and the backups. */
  async commit(): Promise<void> {
    await rm(this.store.journalPath, { force: true });
    await rm(this.store.txnDir, { recursive: true, force: true });
  }

  /**
   * Puts every path back as it was before the transaction, from the backups, last op first. Idempotent: a crash
   * during undo is resolved by undoing again. Returns the ops whose path really changed back.
   */
  async undo(): Promise<JournalOp[]> {
    const restored: JournalOp[] = [];
    const batch = new HostBatch();
    let index = 0;
    for (const op of [...this.journal.ops].reverse()) {
      crashPoint(`undo:op:${index++}`);
      await this.host.removeTempFiles(op.path);
      const now = liveState(await this.host.read(op.path), op.link);
      if (sameState(now, op.before)) continue;
      if (op.before === null) {
        await this.host.remove(op.path, batch);
      } else if (op.link) {
        await this.host.switchSymlink(op.path, (await this.backupOf(op.path, op.before.sha256)).toString('utf8'), batch);
      } else if (now?.sha256 === op.before.sha256) {
        await this.host.setAttributes(op.path, op.before.mode, op.before.uid, op.before.gid);
      } else {
        const content = await this.backupOf(op.path, op.before.sha256);
        await this.host.writeAtomic(op.path, content, op.before.mode, op.before.uid, op.before.gid, batch);
      }
      restored.push(op);
    }
    await batch.flush();
    for (const dir of [...(this.journal.createdDirs ?? [])].reverse()) await this.host.removeEmptyDir(dir);
    return restored;
  }

  /** The backed-up bytes of `path`, checked against the journal: a missing or altered backup is named. */
  private async backupOf(path: string, expected: string): Promise<Buffer> {
    const copy = join(this.store.backupDir, path);
    const fix = `restore ${path} by hand (generation ${this.journal.from ?? '(none)'} holds its last good content), then move journal.json aside and run \`edge-reconciler recover\``;
    const content = await readFile(copy).catch((error: NodeJS.ErrnoException) => {
      throw stateDamaged(copy, `the backup of ${path} is ${error.code === 'ENOENT' ? 'missing' : `unreadable (${error.code})`}`, fix, error);
    });
    if (sha256(content) !== expected) throw stateDamaged(copy, `the backup of ${path} does not match the journal`, fix);
    return content;
  }
}

/** Why a parsed journal cannot be used, or undefined when it can. */
function journalDamage(journal: Journal): string | undefined {
  if (typeof journal !== 'object' || journal === null || journal.version !== 1) return 'it is not a version 1 journal';
  if (!Number.isInteger(journal.generation) || typeof journal.revision !== 'string') return 'it names no generation and revision';
  if (!Array.isArray(journal.ops)) return 'it lists no steps';
  const bad = journal.ops.findIndex(
    (op) => !isHostPath(op?.path) || (op.action !== 'write' && op.action !== 'delete') || !isState(op.before) || !isState(op.after),
  );
  if (bad >= 0) return `step ${bad} is malformed`;
  if (journal.createdDirs !== undefined && !(Array.isArray(journal.createdDirs) && journal.createdDirs.every(isHostPath))) {
    return 'its created directories are malformed';
  }
  return undefined;
}

/** An absolute, normalized host path: undo must never be steered outside the root by a damaged journal. */
function isHostPath(path: unknown): path is string {
  return typeof path === 'string' && path.startsWith('/') && path.length > 1 && posix.normalize(path) === path && !path.split('/').includes('..');
}

function isState(state: unknown): boolean {
  if (state === null) return true;
  const value = state as Partial<FileState> | undefined;
  return typeof value?.sha256 === 'string' && Number.isInteger(value.mode) && Number.isInteger(value.uid) && Number.isInteger(value.gid);
}

/** The directories on the way to `paths` that do not exist yet, parents first. */
async function missingDirs(host: Host, paths: readonly string[]): Promise<string[]> {
  const missing = new Set<string>();
  for (const path of paths) {
    const chain: string[] = [];
    for (let dir = dirname(path); dir !== '/' && !missing.has(dir); dir = dirname(dir)) {
      if (await host.read(dir)) break;
      chain.unshift(dir);
    }
    for (const dir of chain) missing.add(dir);
  }
  return [...missing];
}

function sameState(a: FileState | null, b: FileState | null): boolean {
  if (a === null || b === null) return a === b;
  return a.sha256 === b.sha256 && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;
}
