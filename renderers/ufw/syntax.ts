/**
 * Checks staged rules files with ufw's own command-line parser (`ufw.frontend.parse_command`), run by the Python
 * interpreter of the installed ufw. Only the parser runs: no root needed, no lock taken, nothing read from or
 * written to /etc/ufw, no iptables call. (`ufw --dry-run` was not used: it needs root and reads the live /etc/ufw.)
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Problem } from '../../reconciler/errors.js';
import type { RenderedFile, ValidateInput } from '../types.js';

/** Where Debian and Ubuntu install ufw; PATH is not searched so that a shim cannot stand in for the parser. */
export const UFW_CANDIDATES = ['/usr/sbin/ufw', '/sbin/ufw', '/usr/local/sbin/ufw'];

/** How long the parser may take for all files of a host. */
export const UFW_PARSE_TIMEOUT_MS = 30_000;

// Reads each staged file, splits each command line like a shell, and reports what ufw's parser refuses.
const PARSER = `
import gettext, json, shlex, sys
gettext.install('ufw')
import ufw.util
from ufw.common import UFWError
def _refuse(out, do_exit=True):
    raise UFWError(out)
ufw.util.error = _refuse
import ufw.frontend
found = []
for path in sys.argv[1:]:
    with open(path, encoding='utf-8') as handle:
        lines = handle.read().split('\\n')
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        try:
            ufw.frontend.parse_command(['ufw'] + shlex.split(line))
        except UFWError as e:
            found.append({'path': path, 'line': number, 'error': str(e.value)})
        except ValueError as e:
            found.append({'path': path, 'line': number, 'error': str(e) or 'invalid syntax'})
print(json.dumps(found))
`;

/** The interpreter line of the installed ufw (`#! /usr/bin/python3`), or undefined when ufw is not installed. */
export async function ufwInterpreter(candidates = UFW_CANDIDATES): Promise<string[] | undefined> {
  for (const candidate of candidates) {
    const head = await readFile(candidate, 'utf8').catch(() => undefined);
    const shebang = head === undefined ? undefined : /^#!\s*(.+)$/m.exec(head.split('\n')[0] ?? '');
    if (shebang?.[1]) return shebang[1].trim().split(/\s+/);
  }
  return undefined;
}

/** Runs ufw's parser over every staged rules file; returns UFW_SYNTAX problems (or why it could not run). */
export async function ufwSyntaxProblems(input: ValidateInput, candidates = UFW_CANDIDATES): Promise<Problem[]> {
  const files = [...input.files].sort((a, b) => (a.path < b.path ? -1 : 1));
  if (files.length === 0) return [];
  const first = files[0] as RenderedFile;
  const interpreter = await ufwInterpreter(candidates);
  if (!interpreter) {
    return [
      {
        code: 'VALIDATOR_MISSING',
        file: first.source.file,
        message: `cannot check the ufw rules (${files.map((f) => f.path).join(', ')}): ufw is not installed`,
      },
    ];
  }
  const [command = 'python3', ...prefix] = interpreter;
  const staged = files.map((file) => join(input.stagingDir, file.path));
  const result = await execa(command, [...prefix, '-I', '-B', '-c', PARSER, ...staged], {
    reject: false,
    timeout: UFW_PARSE_TIMEOUT_MS,
    cancelSignal: input.signal,
    extendEnv: false,
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: input.stagingDir, LC_ALL: 'C.UTF-8' },
    cwd: input.stagingDir,
  });
  if (result.exitCode !== 0) {
    const why = result.timedOut ? 'timed out' : firstLine(String(result.stderr ?? '')) || (result.shortMessage ?? 'failed');
    return [{ code: 'VALIDATOR_FAILED', file: first.source.file, message: `ufw rule parser could not run: ${why}` }];
  }
  const found = JSON.parse(String(result.stdout)) as { path: string; line: number; error: string }[];
  return found.map((entry) => {
    const file = files[staged.indexOf(entry.path)] ?? first;
    const text = file.content.split('\n')[entry.line - 1] ?? '';
    return {
      code: 'UFW_SYNTAX',
      ...file.source,
      message: `${file.path} line ${entry.line}: ufw refuses "${text}": ${entry.error.toLowerCase()}`,
    };
  });
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}
