/**
 * Trust checks of a fetched revision, run by the fetch stage before anything else sees the tree: the required
 * signature (SSH with an allowed_signers file, or GPG with a keyring) on the commit, or on the tag for a tag
 * source; and monotonicity: the revision must descend from the last applied one, so a force push or a stale
 * fetch never rewinds a host (people roll back by reverting). Checkouts and plain directories are not checked:
 * they are for development and tests (docs/git-source.md).
 */
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgeError } from '../errors.js';
import type { ResolvedRevision } from './git.js';

/** The trust policy of a host's source. */
export interface TrustPolicy {
  /** Refuse a revision without a trusted signature (on the tag for a tag source, else on the commit). */
  requireSignatures: boolean;
  /** The SSH allowed_signers file (`ssh-keygen -Y`); SSH signatures are untrusted without one. */
  allowedSignersFile?: string;
  /** The GNUPGHOME whose keyring holds the trusted GPG keys; GPG signatures are untrusted without one. */
  gpgHome?: string;
  /** Accept a revision that does not descend from the last applied one. */
  allowRewinds: boolean;
}

/** The policy plus what the run knows: the revision applied last. */
export interface TrustOptions extends TrustPolicy {
  lastApplied?: string;
}

/** What the checks found, for the logs. */
export interface TrustVerdict {
  /** Who signed, as git reports it (`release@example.com`, a GPG user id), when signatures are required. */
  signer?: string;
  /** The revision does not descend from the last applied one, and rewinds are allowed. */
  rewound: boolean;
  /** The checks were skipped: a checkout or a plain directory. */
  skipped: boolean;
}

/** Options of verifyRevision. */
export interface VerifyOptions {
  requireSignatures: boolean;
  allowedSignersFile?: string;
  gpgHome?: string;
  /** Verify this tag (which must point at the revision) instead of the commit. */
  tag?: string;
}

const VERIFY_TIMEOUT_MS = 30_000;

function short(revision: string): string {
  return revision.slice(0, 12);
}

/** Every trust refusal waits for a new commit. */
const REFUSED = { stage: 'fetch', retry: 'refused' } as const;

async function git(gitDir: string, args: string[], env?: Record<string, string>) {
  const { execa } = await import('execa');
  return execa('git', ['-C', gitDir, ...args], { reject: false, timeout: VERIFY_TIMEOUT_MS, env: { LC_ALL: 'C', ...env }, stdin: 'ignore' });
}

/** Runs every trust check the policy asks for on a fetched revision, before its tree is read; throws a refused EdgeError. */
export async function checkTrust(exported: ResolvedRevision, options: TrustOptions): Promise<TrustVerdict> {
  if (exported.kind !== 'remote' || !exported.gitDir) return { rewound: false, skipped: true };
  const signer = await verifyRevision(exported.gitDir, exported.revision, { ...options, tag: exported.tag });
  const rewound = await checkMonotonic(exported.gitDir, options.lastApplied, exported.revision, options.allowRewinds);
  return { ...(signer ? { signer } : {}), rewound, skipped: false };
}

/**
 * Verifies the signature of the commit (or of `tag`) when signatures are required; returns the signer. Throws
 * UNSIGNED (no signature, a lightweight tag) or UNTRUSTED_SIGNATURE (a key not trusted, a bad signature).
 */
export async function verifyRevision(gitDir: string, revision: string, options: VerifyOptions): Promise<string | undefined> {
  if (!options.requireSignatures) return undefined;
  const object = options.tag ? `refs/tags/${options.tag}` : revision;
  const what = options.tag ? `tag ${options.tag} (revision ${short(revision)})` : `revision ${short(revision)}`;
  const type = (await git(gitDir, ['cat-file', '-t', object])).stdout.trim();
  if (options.tag) {
    if (type === 'commit') throw new EdgeError('UNSIGNED', `${what} is a lightweight tag: no signature, and signatures are required (trust.requireSignatures)`, REFUSED);
    const peeled = (await git(gitDir, ['rev-parse', '--verify', '--quiet', `${object}^{commit}`])).stdout.trim();
    if (peeled !== revision) throw new EdgeError('UNTRUSTED_SIGNATURE', `${what} does not point at the revision being applied (it points at ${short(peeled) || 'nothing'})`, REFUSED);
  }
  if (type !== 'commit' && type !== 'tag') throw new EdgeError('UNSIGNED', `${what} is not in the mirror, so its signature cannot be checked`, REFUSED);
  const body = (await git(gitDir, ['cat-file', type, object])).stdout;
  if (!hasSignature(body, type)) throw new EdgeError('UNSIGNED', `${what} has no signature, and signatures are required (trust.requireSignatures)`, REFUSED);
  if (options.tag) {
    // The signature covers the tag object's own name, not the ref it was pushed as: they must be the same.
    const named = /^tag (.*)$/m.exec(body.split('\n\n')[0] ?? '')?.[1];
    if (named !== options.tag) {
      throw new EdgeError('UNTRUSTED_SIGNATURE', `${what} is refused: the signed tag object is named ${JSON.stringify(named ?? '')}, not ${options.tag} (a signed tag pushed under another name)`, REFUSED);
    }
  }

  if (options.allowedSignersFile) {
    const missing = await access(options.allowedSignersFile, constants.R_OK).then(() => false, () => true);
    if (missing) throw new EdgeError('UNTRUSTED_SIGNATURE', `${what} cannot be verified: the allowed_signers file ${options.allowedSignersFile} cannot be read`, REFUSED);
  }
  // Without a configured trust root, nothing is trusted: /dev/null signers, a keyring that does not exist.
  const signers = options.allowedSignersFile ?? '/dev/null';
  const gpgHome = options.gpgHome ?? join(gitDir, 'edge-no-gpg-keyring', 'none');
  const verify = type === 'tag' ? 'verify-tag' : 'verify-commit';
  const result = await git(gitDir, ['-c', `gpg.ssh.allowedSignersFile=${signers}`, verify, '--raw', object], { GNUPGHOME: gpgHome });
  const output = `${result.stderr}\n${result.stdout}`;
  if (result.exitCode === 0) return signerOf(output);
  throw new EdgeError('UNTRUSTED_SIGNATURE', `${what} is refused: ${untrustedReason(output, options)}`, REFUSED);
}

function hasSignature(body: string, type: string): boolean {
  if (type === 'commit') return /^gpgsig(-sha256)? /m.test(body.split('\n\n')[0] ?? '');
  return /^-----BEGIN (PGP|SSH) SIGNATURE-----$/m.test(body);
}

function signerOf(output: string): string | undefined {
  const ssh = /Good "git" signature for (\S+) with (\S+) key (\S+)/.exec(output);
  if (ssh) return `${ssh[1]} (${ssh[2]} ${ssh[3]})`;
  const gpg = /\[GNUPG:\] GOODSIG ([0-9A-F]+) (.+)/.exec(output);
  if (gpg) return `${gpg[2]} (gpg ${gpg[1]})`;
  return undefined;
}

/** Why git refused a signature, in words: the key, the keyring, or git's own reason line. */
export function untrustedReason(output: string, options: Pick<VerifyOptions, 'allowedSignersFile' | 'gpgHome'> = {}): string {
  const sshKey = /Good "git" signature with (\S+) key (\S+)/.exec(output);
  if (sshKey && /No principal matched/.test(output)) {
    return options.allowedSignersFile
      ? `signed by a key not in allowed_signers (${sshKey[1]} ${sshKey[2]}, file ${options.allowedSignersFile})`
      : `signed by an ssh key (${sshKey[1]} ${sshKey[2]}), and no allowed_signers file is configured (trust.allowedSignersFile)`;
  }
  const noKey = /\[GNUPG:\] NO_PUBKEY ([0-9A-F]+)/.exec(output);
  if (noKey) {
    return options.gpgHome
      ? `signed by a gpg key not in the keyring (${noKey[1]}, GNUPGHOME ${options.gpgHome})`
      : `signed by a gpg key (${noKey[1]}), and no gpg keyring is configured (trust.gpgHome)`;
  }
  if (/\[GNUPG:\] BADSIG/.test(output)) return 'bad gpg signature (the content does not match it)';
  if (/\[GNUPG:\] EXPKEYSIG/.test(output)) return 'signed by an expired gpg key';
  if (/\[GNUPG:\] REVKEYSIG/.test(output)) return 'signed by a revoked gpg key';
  if (/\[GNUPG:\] EXPSIG/.test(output)) return 'the gpg signature has expired';
  if (/Signature verification failed|Could not verify signature/i.test(output)) return 'bad ssh signature (the content does not match it)';
  const lines = output.split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('[GNUPG:]'));
  return lines.at(-1)?.toLowerCase() ?? 'the signature could not be verified';
}

/** True when `revision` is `ancestor` or descends from it; false when not, or when either is unknown. */
export async function isDescendant(gitDir: string, ancestor: string, revision: string): Promise<boolean> {
  return (await git(gitDir, ['merge-base', '--is-ancestor', ancestor, revision])).exitCode === 0;
}

/**
 * Refuses (NOT_DESCENDANT) a revision that does not descend from the last applied one, unless rewinds are
 * allowed; returns true for an allowed rewind. Nothing applied yet, or a `tree:` revision, passes.
 */
export async function checkMonotonic(gitDir: string, lastApplied: string | undefined, revision: string, allowRewinds: boolean): Promise<boolean> {
  if (!lastApplied || lastApplied.startsWith('tree:') || lastApplied === revision) return false;
  if (await isDescendant(gitDir, lastApplied, revision)) return false;
  if (allowRewinds) return true;
  const known = (await git(gitDir, ['cat-file', '-e', `${lastApplied}^{commit}`])).exitCode === 0;
  const gone = known ? '' : ' (which the mirror no longer has)';
  throw new EdgeError('NOT_DESCENDANT', `revision ${short(revision)} does not descend from the last applied ${short(lastApplied)}${gone} (a force push or a stale fetch?); revert instead, or set trust.allowRewinds`, REFUSED);
}
