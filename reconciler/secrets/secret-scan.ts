/**
 * The repo-wide secret scan: a desired-state repo must never hold key material or forge tokens. Findings name the
 * file, line and what the thing looks like, never the thing itself.
 */
import type { Problem } from '../errors.js';

interface Pattern {
  code: 'SECRET_PRIVATE_KEY' | 'SECRET_TOKEN';
  what: string;
  regex: RegExp;
}

const PATTERNS: readonly Pattern[] = [
  { code: 'SECRET_PRIVATE_KEY', what: 'a private key', regex: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/ },
  { code: 'SECRET_TOKEN', what: 'a GitHub token', regex: /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b/ },
  { code: 'SECRET_TOKEN', what: 'a GitHub fine-grained token', regex: /\bgithub_pat_[A-Za-z0-9_]{22,}/ },
  { code: 'SECRET_TOKEN', what: 'a GitLab token', regex: /\bglpat-[A-Za-z0-9_-]{20,}/ },
  { code: 'SECRET_TOKEN', what: 'a Tailscale key', regex: /\btskey-(?:auth|client|api)-[A-Za-z0-9-]{10,}/ },
  { code: 'SECRET_TOKEN', what: 'an AWS access key', regex: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { code: 'SECRET_TOKEN', what: 'a Slack token', regex: /\bxox[abprs]-[A-Za-z0-9-]{10,}/ },
];

/** Scans one file's text; returns a problem per finding (file, line, what it looks like). */
export function scanForSecrets(file: string, text: string): Problem[] {
  const problems: Problem[] = [];
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    for (const pattern of PATTERNS) {
      if (pattern.regex.test(line)) {
        problems.push({
          code: pattern.code,
          file,
          line: index + 1,
          message: `holds what looks like ${pattern.what}: remove it from the repo (and its history) and rotate it; secrets belong in the host's secrets dir`,
        });
      }
    }
  });
  return problems;
}
