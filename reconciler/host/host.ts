/**
 * The host adapter: the only module that touches the live machine. Every host path is resolved under a
 * configurable root (`/` on a VM, a sandbox dir in tests and the quick start), and never through a symlink: every
 * operation, the undo of rollback and recovery included, first checks that each directory from the root down to the
 * target is a real directory, and checks again right before it renames or unlinks. Mode and owner are set on an
 * open descriptor of the file itself, never through a path that could lead elsewhere.
 *
 * The calls are synchronous except the fsyncs, which wait for the disk: an apply makes a dozen calls per file for
 * thousands of files, and each is cheaper than its trip through Node's thread pool (and it keeps their order plain).
 * A write, switch or removal fsyncs its directory at once, or, given a {@link HostBatch}, once per directory when
 * the batch is flushed (an apply of a thousand files in one folder syncs that folder once, not a thousand times),
 * and checks a directory that only root can change once per batch, not at every step.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { promisify } from 'node:util';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EdgeError, type Stage } from '../errors.js';
import { crashPoint } from './crash-points.js';
import { networkFactsFor, type NetworkFacts } from './network-facts.js';

/** What is at a managed path on the host right now. */
export interface LiveFile {
  /** `file`, or what stands there instead (a directory or symlink is never followed or overwritten silently). */
  type: 'file' | 'directory' | 'symlink' | 'other';
  /** The bytes of a file; the target text of a symlink (never followed); empty for anything else. */
  content: Buffer;
  mode: number;
  uid: number;
  gid: number;
}

/** Resolves user and group names to ids, from the machine's own /etc/passwd and /etc/group. */
export interface IdResolver {
  uid(name: string): number | undefined;
  gid(name: string): number | undefined;
}

/** A file written beside its target by {@link Host.stageWrite}, waiting to be renamed over it. */
export interface StagedWrite {
  /** The host path it will replace. */
  readonly path: string;
  /** Where it is now, on this machine's filesystem. */
  readonly temp: string;
}

/** What the parent check found: the directories are all there, or one is missing (nothing can be at the path). */
type Parents = 'present' | 'missing';

/** Opens a regular file for reading or fchown/fchmod without following a symlink or blocking on a FIFO. */
const OPEN_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * What `posix.normalize` would change in an absolute path, or what leads out of the root: an empty component
 * (`//`), a `.` or `..` component, a NUL.
 */
const NOT_NORMAL = /\/\/|\/\.\.?(?:\/|$)|\0/;

/** The live host under `root`. */
export class Host {
  private realRoot: string | undefined;
  /**
   * An absolute root, normal and without its trailing slash ('' for '/'), which a normal host path is simply
   * appended to: a no-op resolves every managed path. Undefined for a relative root (joined each time).
   */
  private readonly base: string | undefined;

  constructor(
    readonly root: string,
    readonly ids: IdResolver = systemIds(),
    /** The live network, for the firewall guard (nothing is known of it under a sandbox root). */
    readonly network: NetworkFacts = networkFactsFor(root),
  ) {
    this.base = root.startsWith('/') ? join(root, '/').replace(/\/$/, '') : undefined;
  }

  /**
   * The host path `path` (absolute and normal, e.g. `/etc/caddy/Caddyfile`) on this machine's filesystem. Refuses
   * any other spelling: a `..` would lead out of the root.
   */
  resolve(path: string): string {
    if (!path.startsWith('/') || NOT_NORMAL.test(path)) {
      throw new HostPathError('PATH_TRAVERSAL', path, `host path ${JSON.stringify(path)} is not absolute and normal`);
    }
    return this.base === undefined ? join(this.root, path) : this.base + path;
  }

  /** Reads what stands at `path`, without following a symlink; undefined when nothing is there. */
  async read(path: string): Promise<LiveFile | undefined> {
    if ((await this.checkParents(path, 'read')) === 'missing') return undefined;
    const real = this.resolve(path);
    const stat = lstatOrUndefined(real);
    if (!stat) return undefined;
    if (!stat.isFile()) {
      const type = stat.isDirectory() ? 'directory' : stat.isSymbolicLink() ? 'symlink' : 'other';
      const content = type === 'symlink' ? Buffer.from(readlinkOrEmpty(real)) : Buffer.alloc(0);
      return { type, content, mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
    }
    const fd = await this.openChecked(path, 'read');
    if (fd === undefined) return undefined;
    try {
      const opened = fstatSync(fd);
      if (!opened.isFile()) return { type: 'other', content: Buffer.alloc(0), mode: opened.mode & 0o7777, uid: opened.uid, gid: opened.gid };
      return { type: 'file', content: readFileSync(fd), mode: opened.mode & 0o7777, uid: opened.uid, gid: opened.gid };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Writes `content` to `path` atomically: a temp file beside the target, owner and mode set, fsynced, renamed
   * into place, the directory fsynced (now, or by `batch`). Parent directories are created (0755, root) and must not
   * be symlinks.
   */
  async writeAtomic(path: string, content: Buffer | string, mode: number, uid: number, gid: number, batch?: HostBatch): Promise<void> {
    await this.commitWrite(await this.writeTemp(path, content, mode, uid, gid, true, batch), batch);
  }

  /**
   * The first half of {@link writeAtomic}: the temp file beside `path`, written, owner and mode set, but neither
   * fsynced nor renamed (a batch makes all of them durable at once, then commits each). Until it is committed the
   * target is untouched, and a crash leaves a temp file that recovery removes by name.
   */
  async stageWrite(path: string, content: Buffer | string, mode: number, uid: number, gid: number, batch?: HostBatch): Promise<StagedWrite> {
    return this.writeTemp(path, content, mode, uid, gid, false, batch);
  }

  /** The temp file of a write, fsynced when `sync`. */
  private async writeTemp(path: string, content: Buffer | string, mode: number, uid: number, gid: number, sync: boolean, batch: HostBatch | undefined): Promise<StagedWrite> {
    await this.makeParents(path, batch);
    const real = this.resolve(path);
    const temp = join(dirname(real), `${TEMP_PREFIX}${basename(real)}.${randomHex()}`);
    const fd = openSync(temp, 'wx', 0o600);
    try {
      writeFileSync(fd, content);
      if (this.canChown) fchownSync(fd, uid, gid);
      fchmodSync(fd, mode);
      if (sync) await fsyncFd(fd);
    } catch (error) {
      closeSync(fd);
      try {
        unlinkSync(temp);
      } catch {
        // Gone already, or not ours to remove: recovery cleans temp files by name.
      }
      throw error;
    }
    closeSync(fd);
    return { path, temp };
  }

  /** The second half of {@link writeAtomic}: the durable temp file renamed over its target. */
  async commitWrite({ path, temp }: StagedWrite, batch?: HostBatch): Promise<void> {
    const real = this.resolve(path);
    // Refused here, the temp file stays where it was written: unlinking it by path could reach outside the root.
    await this.checkParents(path, 'write', { mustExist: true, batch });
    if (lstatOrUndefined(real)?.isDirectory()) {
      unlinkSync(temp);
      throw new HostPathError('PATH_NOT_FILE', path, `${path} is a directory; refusing to replace it with a file`);
    }
    renameSync(temp, real);
    await syncParent(real, batch);
  }

  /**
   * Points the symlink `path` at `target` atomically: a new link beside it (named like a temp file, so a crash
   * leaves nothing recovery does not clean), renamed over the old one with rename(2), the directory fsynced. A crash
   * leaves the old link or the new one, never none. A directory standing at `path` is refused, never replaced.
   */
  async switchSymlink(path: string, target: string, batch?: HostBatch): Promise<void> {
    await this.makeParents(path, batch);
    const real = this.resolve(path);
    const temp = join(dirname(real), `${TEMP_PREFIX}${basename(real)}.${randomHex()}`);
    symlinkSync(target, temp);
    crashPoint('link:created');
    await this.checkParents(path, 'switch', { mustExist: true, batch });
    if (lstatOrUndefined(real)?.isDirectory()) {
      unlinkSync(temp);
      throw new HostPathError('PATH_NOT_FILE', path, `${path} is a directory; refusing to replace it with a symlink`);
    }
    renameSync(temp, real);
    await syncParent(real, batch);
  }

  /** Sets mode and owner of an existing file without rewriting it, through a descriptor of the file itself. */
  async setAttributes(path: string, mode: number, uid: number, gid: number): Promise<void> {
    const fd = (await this.checkParents(path, 'change the mode and owner of')) === 'present'
      ? await this.openChecked(path, 'change the mode and owner of')
      : undefined;
    if (fd === undefined) throw new HostPathError('PATH_NOT_FILE', path, `cannot change the mode and owner of ${path}: it does not exist`);
    try {
      if (!fstatSync(fd).isFile()) throw new HostPathError('PATH_NOT_FILE', path, `${path} is not a regular file; refusing to change its mode and owner`);
      if (this.canChown) fchownSync(fd, uid, gid);
      fchmodSync(fd, mode);
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Removes a managed file (never a directory); no error when it is already gone. */
  async remove(path: string, batch?: HostBatch): Promise<void> {
    if ((await this.checkParents(path, 'remove', { batch })) === 'missing') return;
    const real = this.resolve(path);
    const stat = lstatOrUndefined(real);
    if (!stat) return;
    if (stat.isDirectory()) throw new HostPathError('PATH_NOT_FILE', path, `${path} is a directory; refusing to remove it`);
    await this.checkParents(path, 'remove', { mustExist: true, batch });
    unlinkSync(real);
    await syncParent(real, batch);
  }

  /** Removes the directory `dir` when it is empty (never a symlink, never anything in it); true when removed. */
  async removeEmptyDir(dir: string): Promise<boolean> {
    if ((await this.checkParents(dir, 'remove the directory')) === 'missing') return false;
    const real = this.resolve(dir);
    const stat = lstatOrUndefined(real);
    if (!stat?.isDirectory()) return false;
    await this.checkParents(dir, 'remove the directory', { mustExist: true });
    try {
      rmdirSync(real);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT') return false;
      throw error;
    }
    await syncDir(dirname(real));
    return true;
  }

  /** Removes temp files a crashed write left beside `path` (only files and links, never what they point to). */
  async removeTempFiles(path: string): Promise<void> {
    if ((await this.checkParents(path, 'clean up beside')) === 'missing') return;
    const dir = dirname(this.resolve(path));
    const prefix = `${TEMP_PREFIX}${basename(path)}.`;
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      entries = [];
    }
    for (const entry of entries) {
      if (!entry.startsWith(prefix)) continue;
      if (lstatOrUndefined(join(dir, entry))?.isDirectory() !== false) continue;
      await this.checkParents(path, 'clean up beside', { mustExist: true });
      try {
        unlinkSync(join(dir, entry));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }

  /** Throws SymlinkRefusedError when a directory on the way to `path` is a symlink (nothing is created). */
  async checkNoSymlinks(path: string): Promise<void> {
    await this.checkParents(path, 'write');
  }

  /** Creates the directories on the way to `path` (0755) under the root; refuses a symlink or a file among them. */
  private async makeParents(path: string, batch?: HostBatch): Promise<void> {
    mkdirSync(this.root, { recursive: true });
    if ((await this.checkParents(path, 'write', { batch })) === 'present') return;
    let current = '';
    for (const segment of dirname(path).split('/').filter(Boolean)) {
      current += `/${segment}`;
      const real = this.resolve(current);
      if (!lstatOrUndefined(real)) {
        let made = true;
        try {
          mkdirSync(real, { mode: 0o755 });
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
          made = false;
        }
        // mkdir's mode passes the umask (the agent's unit has UMask=0077): a 0700 folder would hide a service's
        // config from its own user (prometheus reading /etc/prometheus/edge-reconciler).
        if (made) chmodSync(real, 0o755);
      }
      const stat = lstatSync(real);
      if (stat.isSymbolicLink()) throw new SymlinkRefusedError(current, path, 'write');
      if (!stat.isDirectory()) throw new HostPathError('PATH_NOT_DIRECTORY', current, `refusing to write ${path}: ${current} is not a directory`);
    }
  }

  /**
   * The one parent check: every directory from the root down to `path`'s is a real directory, not a symlink.
   * `missing` when one does not exist (nothing can be at `path`), unless `mustExist`; a symlink or a file on the
   * way is refused, naming it. Within a `batch`, a directory it has seen that only root can change is not looked at
   * again (see {@link HostBatch}).
   */
  private async checkParents(path: string, operation: string, { mustExist = false, batch }: { mustExist?: boolean; batch?: HostBatch } = {}): Promise<Parents> {
    this.resolve(path); // refuses a path that is not absolute and normal before anything is looked at
    // One lstat per directory below the root (the root's own symlinks are its business): no exception is thrown
    // for a directory that is simply not there yet, the common case on a fresh host.
    let current = '';
    let rootOnly = true;
    for (const segment of dirname(path).split('/').filter(Boolean)) {
      current += `/${segment}`;
      if (rootOnly && batch?.rootOnly.has(current)) continue;
      const stat = lstatOrUndefined(this.resolve(current));
      if (!stat) {
        if (!mustExist) return 'missing';
        throw new SymlinkRefusedError(dirname(path), path, operation, `${dirname(path)} does not lead to ${join(this.rootReal(), dirname(path))}`);
      }
      if (stat.isSymbolicLink()) throw new SymlinkRefusedError(current, path, operation);
      if (!stat.isDirectory()) {
        if (!mustExist) return 'missing';
        throw new HostPathError('PATH_NOT_DIRECTORY', current, `refusing to ${operation} ${path}: ${current} is not a directory`);
      }
      rootOnly &&= stat.uid === 0 && (stat.mode & 0o022) === 0;
      if (rootOnly) batch?.rootOnly.add(current);
    }
    return 'present';
  }

  /**
   * Opens the file at `path` after its parents were checked (never a symlink itself); checks the parents again once
   * it is open, so the descriptor was reached inside the root. Undefined when nothing is there.
   */
  private async openChecked(path: string, operation: string): Promise<number | undefined> {
    let fd: number;
    try {
      fd = openSync(this.resolve(path), OPEN_NOFOLLOW);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP') throw new SymlinkRefusedError(path, path, operation, `${path} itself is a symlink`);
      throw error;
    }
    try {
      // The descriptor is what counts from here on: check that the way to it had no symlink while it was opened.
      await this.checkParents(path, operation, { mustExist: true });
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return fd;
  }

  /** The root with its own symlinks resolved (a sandbox root under a symlinked /tmp is fine; only below it counts). */
  private rootReal(): string {
    this.realRoot ??= realpathOrUndefined(this.root);
    return this.realRoot ?? this.root;
  }

  /** True when files can be given another owner (root on a VM; tests as a normal user keep their own). */
  private get canChown(): boolean {
    return process.getuid?.() === 0;
  }
}

/** What stands at `path` (not followed); undefined when nothing is there. */
function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** Where `path` really leads (the kernel's realpath); undefined when a part of it is missing or not a directory. */
function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync.native(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** A symlink's target text; empty when it cannot be read (gone meanwhile). */
function readlinkOrEmpty(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

/** fsyncs an open descriptor through the thread pool: the one call here that waits for the disk. */
export const fsyncFd = promisify(fsync);

/** Temp files are hidden, named after their target, and recognisable for clean-up after a crash. */
export const TEMP_PREFIX = '.edge-tmp.';

/** Random bytes for temp names, drawn a kilobyte at a time. */
let randomPool = Buffer.alloc(0);
let randomAt = 0;

/**
 * Eight random hex digits for a temp name, as unguessable as a draw of their own; drawn from a pool, since one
 * randomBytes call per name cost 9000 calls (70 ms) in a cold 1000-app apply.
 */
function randomHex(): string {
  if (randomAt + 4 > randomPool.length) {
    randomPool = randomBytes(1024);
    randomAt = 0;
  }
  randomAt += 4;
  return randomPool.toString('hex', randomAt - 4, randomAt);
}

/**
 * A host path the adapter refuses to touch: a symlink or a file where a directory must be, a directory where a file
 * must be, or a path that is not absolute and normal. It needs a human: the agent never repairs the host's tree.
 */
export class HostPathError extends EdgeError {
  constructor(
    code: 'PATH_SYMLINK' | 'PATH_NOT_DIRECTORY' | 'PATH_NOT_FILE' | 'PATH_TRAVERSAL',
    readonly path: string,
    message: string,
  ) {
    super(code, message, { stage: 'apply', retry: 'stuck', problems: [{ code, file: path, message }] });
    this.name = 'HostPathError';
  }

  /** The same refusal, named by the stage it happened in (a read in plan, an undo in rollback). */
  inStage(stage: Stage): EdgeError {
    return new EdgeError(this.code, this.message, { stage, retry: this.retry, problems: this.problems, cause: this });
  }
}

/** A host operation would go through a symlink: a way out of the root (a directory replaced by a link). */
export class SymlinkRefusedError extends HostPathError {
  constructor(link: string, target: string, operation: string, why = `${link} is a symlink`) {
    super('PATH_SYMLINK', link, `refusing to ${operation} ${target}: ${why} (a way out of the root); put the real directory back`);
    this.name = 'SymlinkRefusedError';
  }
}

/**
 * A batch of writes, switches and removals (one transaction's), holding the host lock. It keeps two things:
 *
 * - the directories whose entries it changed, each fsynced once by `flush`. Until then the new entries are live but
 *   not yet durable: a batch is flushed before anything records it done (the transaction's journal stays until
 *   then, so a power cut in between is undone like any other interrupted apply);
 * - the directories found to be real, owned by root and writable by no one else, as were all above them: only root
 *   can swap such a directory for a symlink, so within the batch it is checked once, not at every step (a thousand
 *   files in /etc/systemd/system were ~10 lstats each). A directory another user can write (an app's own data dir)
 *   and all below it are checked at every step, as outside a batch.
 */
export class HostBatch {
  private readonly dirs = new Set<string>();
  /** Host paths of directories only root can change (see above). */
  readonly rootOnly = new Set<string>();

  /** Leaves the fsync of `dir` to `flush`. */
  syncLater(dir: string): void {
    this.dirs.add(dir);
  }

  /** fsyncs every directory added since the last flush. */
  async flush(): Promise<void> {
    const dirs = [...this.dirs].sort();
    this.dirs.clear();
    for (const dir of dirs) await syncDir(dir);
  }
}

/** fsyncs the directory of `real` now, or leaves it to `batch`. */
async function syncParent(real: string, batch: HostBatch | undefined): Promise<void> {
  if (batch) batch.syncLater(dirname(real));
  else await syncDir(dirname(real));
}

/** fsyncs a directory so a rename in it survives power loss. */
export async function syncDir(dir: string): Promise<void> {
  await fsyncPath(dir);
}

/** fsyncs what is at `path` (a file or a directory; never through a symlink). */
export async function fsyncPath(path: string): Promise<void> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads /etc/passwd and /etc/group of the running machine once (again for a name it did not find). */
export function systemIds(): IdResolver {
  const table = (file: string): Map<string, number> => {
    const map = new Map<string, number>();
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return map;
    }
    for (const line of text.split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id && /^\d+$/.test(id)) map.set(name, Number(id));
    }
    return map;
  };
  let users: Map<string, number> | undefined;
  let groups: Map<string, number> | undefined;
  // A name not found is looked up afresh: prepare may have just created an app's user (useradd).
  return {
    uid: (name) => (users ??= table('/etc/passwd')).get(name) ?? (users = table('/etc/passwd')).get(name),
    gid: (name) => (groups ??= table('/etc/group')).get(name) ?? (groups = table('/etc/group')).get(name),
  };
}

export { ExecRunner, RecordingRunner, type CommandOptions, type CommandResult, type CommandRunner } from './commands.js';
