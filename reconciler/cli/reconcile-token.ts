/**
 * The optional token of `POST /reconcile`: read from a file only root may read, shared by `serve` (which then
 * requires it) and `reconcile` (which sends it). It guards the manual trigger against same-host forwarders: a
 * local reverse proxy or tunnel turns remote requests into loopback ones, but cannot read the file.
 */
import { readFile, stat } from 'node:fs/promises';
import { EdgeError } from '../errors.js';

/** Reads the token; refuses a file others may read, an empty file, or one with more than one line. */
export async function readReconcileToken(path: string): Promise<string> {
  let text: string;
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0) {
      throw new EdgeError('RECONCILE_TOKEN_FILE', `reconcile token file ${path} may be read by group or others (mode ${(info.mode & 0o777).toString(8)}): make it 0600`, {
        stage: 'fetch',
        retry: 'invalid',
      });
    }
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof EdgeError) throw error;
    throw new EdgeError('RECONCILE_TOKEN_FILE', `cannot read the reconcile token file ${path}`, { stage: 'fetch', retry: 'invalid', cause: error });
  }
  const token = text.trim();
  if (!/^[\x21-\x7e]{16,512}$/.test(token)) {
    throw new EdgeError('RECONCILE_TOKEN_FILE', `reconcile token file ${path} must hold one token of 16 to 512 printable characters without spaces`, {
      stage: 'fetch',
      retry: 'invalid',
    });
  }
  return token;
}
