/**
 * Golden cases: one file per renderer case under test/golden/<kind>/*.case: a YAML description of a tiny repo, a
 * separator line, and the expected output (rendered files, or the problems). A new case is a new file.
 * `UPDATE_GOLDEN=1` rewrites the expected part; read every rewritten file before committing it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { EdgeError, formatProblem } from '../../reconciler/errors.js';
import { DEFAULT_PATH_POLICY } from '../../reconciler/host/path-policy.js';
import { loadDesiredState } from '../../reconciler/stages/load.js';
import { renderHost } from '../../reconciler/stages/render.js';
import { collectValidationProblems } from '../../reconciler/stages/validate.js';
import { placeholderSecrets, type SecretSource } from '../../renderers/template.js';
import type { RenderedFile } from '../../renderers/types.js';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { TINY_HOST, writeTinyRepo, type TinyRepo } from '../helpers/tiny-repo.js';

const GOLDEN_DIR = join(PROJECT_ROOT, 'test', 'golden');
const SEPARATOR = '----- expected -----';

interface CaseInput extends TinyRepo {
  secrets?: Record<string, string>;
  validate?: boolean;
}

/** Renders a case to the text its expected part must equal. */
async function runCase(input: CaseInput): Promise<string> {
  const repo = await writeTinyRepo(input);
  try {
    const secrets: SecretSource = input.secrets
      ? { get: (name) => input.secrets?.[name], description: 'the test secrets' }
      : placeholderSecrets;
    let files: RenderedFile[];
    let state;
    try {
      state = await loadDesiredState(repo);
      files = renderHost(state, TINY_HOST, secrets, DEFAULT_PATH_POLICY).files;
    } catch (error) {
      if (!(error instanceof EdgeError)) throw error;
      return error.problems.map((p) => `error: ${formatProblem(p)}\n`).join('');
    }
    let out = files.map(describeFile).join('');
    if (input.validate) {
      const problems = await collectValidationProblems(state, files);
      out += problems.length > 0 ? problems.map((p) => `invalid: ${formatProblem(p)}\n`).join('') : 'valid\n';
    }
    return out;
  } finally {
    await rm(repo, { recursive: true, force: true });
  }
}

function describeFile(file: RenderedFile): string {
  const mode = file.mode.toString(8).padStart(4, '0');
  const meta: Record<string, unknown> = {};
  if (file.unit) meta.unit = file.unit;
  if (file.ufw) meta.ufw = { defaults: file.ufw.defaults, rules: file.ufw.rules.length };
  if (file.validateCommand) meta.validateCommand = file.validateCommand;
  if (file.onChange) meta.onChange = file.onChange;
  if (file.link) meta.link = true;
  if (file.app) meta.app = file.app;
  if (file.secrets.length > 0) meta.secrets = file.secrets;
  if (file.sensitive) meta.sensitive = true;
  const metaLine = Object.keys(meta).length > 0 ? `meta: ${JSON.stringify(meta)}\n` : '';
  return `=== ${file.path} ${mode} ${file.owner}:${file.group}\n${metaLine}${file.content}`;
}

describe('golden renderer cases', () => {
  const kinds = readdirSync(GOLDEN_DIR, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  for (const kind of kinds.sort()) {
    describe(kind, () => {
      const cases = readdirSync(join(GOLDEN_DIR, kind)).filter((name) => name.endsWith('.case')).sort();
      for (const name of cases) {
        const path = join(GOLDEN_DIR, kind, name);
        const text = readFileSync(path, 'utf8');
        const at = text.indexOf(`\n${SEPARATOR}\n`);
        assert.ok(at >= 0, `${path} has no "${SEPARATOR}" line`);
        const head = text.slice(0, at + 1);
        const expected = text.slice(at + SEPARATOR.length + 2);
        const title = /^# (.+)$/m.exec(head)?.[1] ?? name;
        it(`${name}: ${title}`, async () => {
          const actual = await runCase(parse(head) as CaseInput);
          if (process.env.UPDATE_GOLDEN) {
            writeFileSync(path, `${head}${SEPARATOR}\n${actual}`);
            return;
          }
          assert.equal(actual, expected);
        });
      }
    });
  }
});
