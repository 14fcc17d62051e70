/**
 * The state dir's lock: one reconcile (apply, rollback, recover, the daemon's worker) at a time per state dir.
 *
 * An flock(2) on an open descriptor of `<stateDir>/lock`, which the kernel drops when the process ends however it
 * ends (kill -9, power cut of the process, OOM): no PID to trust, no stale lock to take over, nothing unlinked.
 * Node has no flock in core, and the npm bindings (fs-ext) are native add-ons built by node-gyp at install, which
 * the single-executable .deb would have to ship and load beside its bundle; so util-linux's flock(1) (essential on
 * Debian and Ubuntu) locks the descriptor for us: it inherits the open file description as its fd 3 and locks it;
 * the lock belongs to that description, so it stays with this process after flock(1) exits.
 * The file only tells who holds the lock (pid and time, for messages); nothing reads it to decide.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { EdgeError } from '../errors.js';

/** Releases a lock; safe to call twice. */
export type Unlock = () => Promise<void>;

/** flock(1)'s exit status when the lock is held by another (set with --conflict-exit-code). */
const CONFLICT = 75;

/**
 * Takes the lock at `path`, waiting up to `waitMs` for a holder to finish. Refuses with `LOCKED` (naming the
 * holder) when it stays held, and with `LOCK_FAILED` when the lock file cannot be opened or locked at all.
 */
export async function acquireLock(path: string, waitMs = 0): Promise<Unlock> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    throw lockFailed(path, `cannot open it (${(error as NodeJS.ErrnoException).code ?? String(error)})`, error);
  }
  let status: number;
  try {
    status = await flockDescriptor(handle, waitMs);
  } catch (error) {
    await handle.close();
    throw lockFailed(path, `flock(1) from util-linux could not run (${(error as NodeJS.ErrnoException).code ?? String(error)})`, error);
  }
  if (status !== 0) {
    await handle.close();
    if (status !== CONFLICT) throw lockFailed(path, `flock(1) exited ${status}`);
    const holder = await readHolder(path);
    throw new EdgeError('LOCKED', `another reconcile (${holder}) holds ${path}; try again when it is done`, {
      stage: 'fetch',
      retry: 'transient',
    });
  }
  try {
    await writeHolder(handle);
  } catch (error) {
    await handle.close();
    throw error;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await handle.truncate(0).catch(() => undefined);
    await handle.close();
  };
}

/** Runs flock(1) on the handle's open file description; resolves with its exit status. */
function flockDescriptor(handle: FileHandle, waitMs: number): Promise<number> {
  const wait = waitMs > 0 ? ['--timeout', String(waitMs / 1000)] : ['--nonblock'];
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', ...wait, '--conflict-exit-code', String(CONFLICT), '3'], {
      stdio: ['ignore', 'ignore', 'ignore', handle.fd],
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/**
 * Names the holder in the lock file. A state dir that cannot take these few bytes (full, read-only) cannot take a
 * generation either: that is thrown, for the caller to name; any other failure leaves the holder unnamed.
 */
async function writeHolder(handle: FileHandle): Promise<void> {
  const text = `${process.pid} ${new Date().toISOString()}\n`;
  try {
    await handle.truncate(0);
    await handle.write(text, 0);
    await handle.datasync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS') throw error;
  }
}

/** "pid N since T", or a plain word when the holder has not written itself yet. */
async function readHolder(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const [pid, since] = text.trim().split(' ');
  return pid && /^\d+$/.test(pid) ? `pid ${pid}${since ? ` since ${since}` : ''}` : 'a process that has not named itself yet';
}

function lockFailed(path: string, why: string, cause?: unknown): EdgeError {
  return new EdgeError('LOCK_FAILED', `cannot take the lock ${path}: ${why}`, { stage: 'fetch', retry: 'transient', cause });
}
