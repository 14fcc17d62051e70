/**
 * Turns what `systemd-analyze verify` prints into problems. Its exit code is not the verdict (it exits 0 after
 * warnings such as unknown keys): every printed line is a problem, mapped to the managed file it is about, except a
 * missing executable under one of the external exec prefixes (app binaries deployed outside the repo).
 */
import type { Problem } from '../../reconciler/errors.js';
import { isUnder } from '../../reconciler/host/path-policy.js';
import type { RenderedFile } from '../types.js';
import { unitOfName } from './render.js';

/** Why a unit is on verify's command line, and the managed file that answers for it. */
export interface VerifyTarget {
  unit: string;
  file: RenderedFile;
  /** How the unit got there, for messages about units the repo does not hold (`the parent of drop-in …`). */
  reason?: string;
}

/** What the mapping needs to know about one verify run. */
export interface VerifyContext {
  /** `<stagingDir>`: stripped from paths so messages name host paths. */
  stagingDir: string;
  /** Rendered files of the host by target path. */
  byPath: ReadonlyMap<string, RenderedFile>;
  /** The units on verify's command line. */
  targets: ReadonlyMap<string, VerifyTarget>;
  externalExecPrefixes: string[];
}

const LOCATED = /^(\/\S+?):(\d+): (.*)$/;
const NOT_FOUND = /^Unit (\S+) not found\.$/;
const BAD_SETTING = /^Unit (\S+) has a bad unit file setting\.$/;
const FATAL = /^(\S+): Unit configuration has fatal error, unit will not be started\.$/;
const UNIT_PREFIXED = /^([A-Za-z0-9:_.@\\-]+\.[a-z]+): (.*)$/;
const NOT_EXECUTABLE = /^Command (\S+) is not executable: /;
const DEPENDENCY_MISSING = /^Failed to create \S+: Unit (\S+) not found\.$/;

/** The repo file a rendered file came from: its template, or the declaration holding its inline content. */
export function originOf(file: RenderedFile): string {
  return file.template ?? file.source.file;
}

/** Every problem in verify's output (stdout and stderr together), in output order. */
export function verifyProblems(output: string, context: VerifyContext): Problem[] {
  const problems: Problem[] = [];
  const flagged = new Set<string>();
  const summaries: { unit: string; line: string }[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.split(context.stagingDir).join('').trim();
    if (line === '') continue;
    const summary = BAD_SETTING.exec(line) ?? FATAL.exec(line);
    if (summary) {
      summaries.push({ unit: summary[1] ?? '', line });
      continue;
    }
    const problem = lineProblem(line, context);
    if (problem === 'skip') continue;
    problems.push(problem.problem);
    if (problem.unit) flagged.add(problem.unit);
  }
  // "Unit x has a bad unit file setting." repeats an earlier, precise line; keep it only when it stands alone.
  for (const { unit, line } of summaries) {
    if (flagged.has(unit)) continue;
    flagged.add(unit);
    const target = context.targets.get(unit);
    problems.push(
      target
        ? { code: 'UNIT_INVALID', file: originOf(target.file), message: `${unit}: ${tidy(line.slice(line.indexOf(' ') + 1))}` }
        : unrelated(line),
    );
  }
  return problems;
}

type LineResult = 'skip' | { problem: Problem; unit?: string };

function lineProblem(line: string, context: VerifyContext): LineResult {
  const located = LOCATED.exec(line);
  if (located) return locatedProblem(located[1] ?? '', located[2] ?? '', located[3] ?? '', line, context);
  const notFound = NOT_FOUND.exec(line);
  if (notFound) {
    const unit = notFound[1] ?? '';
    const target = context.targets.get(unit);
    if (!target) return { problem: unrelated(line) };
    const why = target.reason ? ` (${target.reason})` : '';
    return {
      unit,
      problem: {
        code: 'UNIT_NOT_FOUND',
        file: originOf(target.file),
        message: `${unit}${why} is neither in the repo nor on the host`,
      },
    };
  }
  const prefixed = UNIT_PREFIXED.exec(line);
  const target = prefixed ? context.targets.get(prefixed[1] ?? '') : undefined;
  if (!prefixed || !target) return { problem: unrelated(line) };
  const unit = prefixed[1] ?? '';
  const text = prefixed[2] ?? '';
  const command = NOT_EXECUTABLE.exec(text)?.[1];
  if (command !== undefined) {
    if (context.externalExecPrefixes.some((prefix) => isUnder(command, prefix.replace(/\/+$/, '')))) return 'skip';
    return { unit, problem: { code: 'UNIT_EXEC_MISSING', file: originOf(target.file), message: `${unit}: ${tidy(text)}` } };
  }
  const dependency = DEPENDENCY_MISSING.exec(text)?.[1];
  if (dependency !== undefined) {
    return {
      unit,
      problem: {
        code: 'UNIT_DEPENDENCY_MISSING',
        file: originOf(target.file),
        message: `${unit} depends on ${dependency}, which is neither in the repo nor on the host`,
      },
    };
  }
  return { unit, problem: { code: 'UNIT_INVALID', file: originOf(target.file), message: `${unit}: ${tidy(text)}` } };
}

/** A `path:line: text` line: a staged file of ours, or a host file of a unit we asked about, or someone else's. */
function locatedProblem(path: string, line: string, text: string, whole: string, context: VerifyContext): LineResult {
  const own = context.byPath.get(path);
  if (own) {
    const unit = own.unit?.unit ?? unitOfName(path.slice(path.lastIndexOf('/system/') + '/system/'.length)).unit;
    return { unit, problem: { code: 'UNIT_INVALID', file: originOf(own), message: `${path} line ${line}: ${tidy(text)}` } };
  }
  // A host file (the packaged caddy.service under a drop-in of ours) of a unit on the command line.
  const relative = /\/system\/(.+)$/.exec(path)?.[1];
  const unit = relative ? unitOfName(relative).unit : undefined;
  const target = unit ? context.targets.get(unit) : undefined;
  if (!unit || !target) return { problem: unrelated(whole) };
  return {
    unit,
    problem: {
      code: 'UNIT_INVALID',
      file: originOf(target.file),
      message: `${path} line ${line}: ${tidy(text)} (host file of ${unit}, which ${target.file.path} configures)`,
    },
  };
}

/** A line about nothing the repo manages (e.g. a broken host unit pulled in as a dependency): still a failure. */
function unrelated(line: string): Problem {
  return { code: 'UNIT_VERIFY_UNRELATED', message: `systemd-analyze verify, about no managed unit: ${tidy(line)}` };
}

/** Lowercases the first letter and drops the final period, as problem messages are written. */
function tidy(text: string): string {
  const trimmed = text.replace(/\.$/, '');
  return trimmed.charAt(0).toLowerCase() + trimmed.slice(1);
}
