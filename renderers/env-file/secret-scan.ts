/**
 * The env-file part of the load stage's secret scan: a secret-looking KEY must take its value from
 * `{{secret "NAME"}}` (or another template expression), never from a literal committed to the repo.
 */
import type { Problem } from '../../reconciler/errors.js';
import { ENV_KEY, isEnvCommentOrBlank } from './env-syntax.js';

/**
 * Names that hold secrets. AUTH counts only as a whole `_`-separated word, so AUTHOR or OAUTH_REDIRECT_URL
 * (plain settings) are not flagged, while BASIC_AUTH and AUTH_HEADER are.
 */
export const SECRET_KEY = /(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?|(?:^|_)AUTH(?:_|$))/i;

/** Handlebars expressions, including `{{{raw}}}` and `{{!-- comments --}}`. */
const EXPRESSION = /\{\{\{[\s\S]*?\}\}\}|\{\{!--[\s\S]*?--\}\}|\{\{[\s\S]*?\}\}/g;

/**
 * Finds `KEY=value` lines of an env template whose KEY looks secret and whose value holds literal characters
 * (anything but template expressions, quotes and spaces). Problems name the key and line, never the value.
 */
export function findLiteralSecrets(templateText: string, file: string): Problem[] {
  const problems: Problem[] = [];
  templateText.split('\n').forEach((line, index) => {
    if (isEnvCommentOrBlank(line)) return;
    const at = line.indexOf('=');
    if (at < 0) return;
    const key = line.slice(0, at).trim();
    if (!ENV_KEY.test(key) || !SECRET_KEY.test(key)) return;
    const literal = line.slice(at + 1).replace(EXPRESSION, '').replace(/["'\s]/g, '');
    if (literal === '') return;
    problems.push({
      code: 'SECRET_LITERAL',
      file,
      line: index + 1,
      message: `${key} holds a literal value; use {{secret "${key}"}}`,
    });
  });
  return problems;
}
