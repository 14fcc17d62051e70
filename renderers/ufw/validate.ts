/**
 * Validates a host's ufw files: the guard rails over the union of the rules (pure), then ufw's own parser over
 * every staged line, so activation never replays a line ufw refuses.
 */
import type { Problem } from '../../reconciler/errors.js';
import type { ValidateInput } from '../types.js';
import { guardRailProblems } from './guard-rails.js';
import { ufwSyntaxProblems } from './syntax.js';

/** Every problem of the host's ufw files; empty when they may be applied. */
export async function validateUfw(input: ValidateInput): Promise<Problem[]> {
  if (input.files.length === 0) return [];
  const rails = guardRailProblems(input.files, input.guards);
  const syntax = await ufwSyntaxProblems(input);
  return [...rails, ...syntax];
}
