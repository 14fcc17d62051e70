/**
 * Errors of the git source: every failure is a FETCH_FAILED (or FETCH_TIMEOUT) whose message and cause carry no
 * credential, neither from a URL's userinfo nor from a token file.
 */
import { EdgeError } from '../errors.js';

/** A fetch failure with git's last lines, credentials scrubbed. */
export function fetchError(message: string, cause: unknown, retry: 'transient' | 'refused' | 'invalid' = 'transient', secrets: string[] = []): EdgeError {
  const detail = cause instanceof Error ? cause.message.split('\n').filter(Boolean).slice(-2).join(' | ') : String(cause);
  return new EdgeError('FETCH_FAILED', scrub(`${message}: ${detail}`, secrets), { stage: 'fetch', retry, cause: scrubbedCause(cause, secrets) });
}

/** `text` without URL userinfo and without any of `secrets`. */
export function scrub(text: string, secrets: string[]): string {
  // Userinfo stops at the first character that cannot be in it, so a JSON or quoted text keeps its shape.
  let clean = text.replace(/(\w+:\/\/)[^/?#@\s"'\\<>]+@/g, '$1');
  for (const secret of secrets) if (secret) clean = clean.split(secret).join('[redacted]');
  return clean;
}

/** The cause itself, or a copy of its message scrubbed when there are secrets to hide. */
export function scrubbedCause(cause: unknown, secrets: string[]): unknown {
  return secrets.length > 0 && cause instanceof Error ? new Error(scrub(cause.message, secrets)) : cause;
}

/** A repo URL fit for messages: credentials in the URL are dropped. */
export function describeRepo(repo: string): string {
  return scrub(repo, []);
}
