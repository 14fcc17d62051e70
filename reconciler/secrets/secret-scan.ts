/**
 * The repo-wide secret scan: a desired-state repo must never hold key material or forge tokens. Findings name the
 * file, line and what the thing looks like, never the thing itself. Every file is scanned whatever its size or
 * encoding: bytes are read as latin1 (one character per byte), line by line, in chunks.
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

/** Any of the patterns: text it does not match holds no finding, and its lines need no scan one by one. */
const ANY_PATTERN = new RegExp(PATTERNS.map((pattern) => `(?:${pattern.regex.source})`).join('|'));

/** How much of an unterminated line is kept between chunks: far longer than any pattern. */
const CARRY_LIMIT = 4096;

/** Scans one file's text; returns a problem per finding (file, line, what it looks like). */
export function scanForSecrets(file: string, text: string): Problem[] {
  const scanner = new SecretScanner(file);
  scanner.push(Buffer.from(text, 'utf8'));
  return scanner.finish();
}

/**
 * Scans a file chunk by chunk (any bytes: NUL, invalid UTF-8, any size), so a key inside a large or binary file
 * is found like any other. One problem per pattern and line.
 */
export class SecretScanner {
  private readonly problems: Problem[] = [];
  private readonly seen = new Set<string>();
  private carry = '';
  private line = 1;

  constructor(private readonly file: string) {}

  /** Scans the next bytes of the file. */
  push(chunk: Buffer): void {
    const text = this.carry + chunk.toString('latin1');
    if (!ANY_PATTERN.test(text)) {
      // Nothing to find (what nearly every file is): count the lines, keep the unterminated tail.
      let end = text.indexOf('\n');
      let lastEnd = -1;
      for (; end >= 0; end = text.indexOf('\n', end + 1)) {
        this.line++;
        lastEnd = end;
      }
      const last = text.slice(lastEnd + 1);
      this.carry = last.length > CARRY_LIMIT ? last.slice(-CARRY_LIMIT) : last;
      return;
    }
    const lines = text.split('\n');
    const last = lines.pop() ?? '';
    for (const text of lines) {
      this.scanLine(text);
      this.line++;
    }
    // A line without end (a binary file) is scanned as it grows; only its tail is carried on.
    if (last.length > CARRY_LIMIT) {
      this.scanLine(last);
      this.carry = last.slice(-CARRY_LIMIT);
    } else {
      this.carry = last;
    }
  }

  /** Scans what is left and returns every finding. */
  finish(): Problem[] {
    this.scanLine(this.carry);
    this.carry = '';
    return this.problems;
  }

  private scanLine(text: string): void {
    for (const pattern of PATTERNS) {
      if (!pattern.regex.test(text)) continue;
      const key = `${this.line}|${pattern.what}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      this.problems.push({
        code: pattern.code,
        file: this.file,
        line: this.line,
        message: `holds what looks like ${pattern.what}: remove it from the repo (and its history) and rotate it; secrets belong in the host's secrets dir`,
      });
    }
  }
}
