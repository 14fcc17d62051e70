/**
 * The users apps build and run as. A fresh VM lacks them: prepare creates a missing one as a system user (home the
 * app's dir, no login shell, its own group). Users are never deleted. Under a sandbox root nothing is created on the
 * machine: builds there run as `nobody` when the machine has no such user.
 */
import { readFile } from 'node:fs/promises';
import { SANDBOX_ID } from './sandbox.js';

/** A user's ids, read afresh from the machine's /etc/passwd (a user created a moment ago is found). */
export async function lookupUser(name: string, passwd = '/etc/passwd'): Promise<{ uid: number; gid: number } | undefined> {
  const text = await readFile(passwd, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid && gid && /^\d+$/.test(uid) && /^\d+$/.test(gid)) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/** The command that creates an app's system user. */
export function systemUserArgv(user: string, home: string): string[] {
  return ['useradd', '--system', '--user-group', '--home-dir', home, '--no-create-home', '--shell', '/usr/sbin/nologin', user];
}

/** The ids a build runs as under a sandbox root: the machine's user when it has one, else nobody. */
export async function sandboxBuildIds(user: string): Promise<{ uid: number; gid: number }> {
  return (await lookupUser(user)) ?? { uid: SANDBOX_ID, gid: SANDBOX_ID };
}
