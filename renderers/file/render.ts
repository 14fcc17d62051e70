/**
 * Renders a generic file resource: its text (no secrets: those belong in env files), owner and mode, the validate
 * command with `%s` left in place, and the normalized onChange action.
 */
import { fileBase, parseMode, withFinalNewline } from '../common.js';
import type { OnChange, RenderInput, RenderedFile } from '../types.js';

interface FileSpec {
  target: string;
  template?: string;
  mode?: string;
  validate?: string | string[];
  onChange?: { restart?: string[]; reload?: string[]; run?: string[] };
}

/** Renders one file resource. Throws RenderProblems for template errors (and any use of secrets). */
export function renderFile(input: RenderInput): RenderedFile[] {
  const spec = input.resource.spec as unknown as FileSpec;
  const rendered = input.engine.render(input.resource, input.data, { allowSecrets: false });
  const validateCommand = normalizeValidate(spec.validate);
  const onChange = normalizeOnChange(spec.onChange);
  return [
    {
      ...fileBase(input),
      path: spec.target,
      content: withFinalNewline(rendered.text),
      mode: parseMode(spec.mode, 0o644),
      ...(typeof spec.template === 'string' ? { template: rendered.file } : {}),
      ...(validateCommand ? { validateCommand } : {}),
      ...(onChange ? { onChange } : {}),
    },
  ];
}

/** The validate command as argv: a string is split on whitespace. */
export function normalizeValidate(validate: string | string[] | undefined): string[] | undefined {
  if (validate === undefined) return undefined;
  const argv = typeof validate === 'string' ? validate.trim().split(/\s+/) : [...validate];
  return argv.length > 0 && argv[0] !== '' ? argv : undefined;
}

/** restart and reload as sorted, de-duplicated lists; undefined when the action does nothing. */
export function normalizeOnChange(onChange: FileSpec['onChange']): OnChange | undefined {
  if (!onChange) return undefined;
  const sorted = (units: string[] | undefined): string[] => [...new Set(units ?? [])].sort();
  const normalized: OnChange = { restart: sorted(onChange.restart), reload: sorted(onChange.reload) };
  if (onChange.run && onChange.run.length > 0) normalized.run = [...onChange.run];
  if (normalized.restart.length === 0 && normalized.reload.length === 0 && !normalized.run) return undefined;
  return normalized;
}
