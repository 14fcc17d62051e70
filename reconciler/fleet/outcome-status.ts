/**
 * What a run's outcome says on the forge: the commit status state and a description of at most 140 characters
 * (GitHub's limit), redacted, naming the error code and the failing check. Runs that say nothing about a commit
 * (a drift report, a pinned host, a recovery) post nothing.
 */
import type { CommitState } from './forge-client.js';

/** GitHub refuses longer descriptions. */
export const MAX_DESCRIPTION = 140;

/** The part of a run's outcome the forge is told. */
export interface OutcomeSummary {
  result: string;
  revision?: string;
  generation?: number;
  code?: string;
  reason?: string;
  failedCheck?: { name: string; message: string };
}

/** A status to post for one commit. */
export interface CommitStatus {
  sha: string;
  state: CommitState;
  description: string;
}

const HELD = new Set(['waiting', 'halted', 'suspended', 'outside-window']);
const FAILED = new Set(['rolled-back', 'invalid', 'refused']);

/** The status of a finished run, or undefined when the run says nothing new about a commit. */
export function statusOfOutcome(outcome: OutcomeSummary, redact: (text: string) => string): CommitStatus | undefined {
  const sha = outcome.revision;
  if (!sha || !/^[0-9a-f]{40,64}$/i.test(sha)) return undefined;
  const say = (state: CommitState, text: string): CommitStatus => ({ sha, state, description: shorten(redact(text)) });
  const code = outcome.code ? `${outcome.code}: ` : '';
  if (outcome.result === 'applied' || outcome.result === 'unchanged') {
    return say('success', `live and healthy${outcome.generation !== undefined ? ` (generation ${outcome.generation})` : ''}`);
  }
  if (HELD.has(outcome.result)) {
    const reason = outcome.reason ?? '';
    return say('pending', reason.startsWith(outcome.result) ? reason : `${outcome.result}: ${reason}`);
  }
  if (FAILED.has(outcome.result)) {
    const check = outcome.failedCheck ? `check ${outcome.failedCheck.name} failed: ${outcome.failedCheck.message}` : (outcome.reason ?? '');
    return say('failure', `${outcome.result}: ${code}${check}`);
  }
  if (outcome.result === 'failed') return say('error', `agent error: ${code}${outcome.reason ?? ''}`);
  return undefined;
}

/** The pending status posted when applying a commit begins. */
export function applyingStatus(sha: string): CommitStatus {
  return { sha, state: 'pending', description: 'applying' };
}

/** One line, at most MAX_DESCRIPTION characters, cut with an ellipsis. */
export function shorten(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= MAX_DESCRIPTION ? line : `${line.slice(0, MAX_DESCRIPTION - 1)}…`;
}
