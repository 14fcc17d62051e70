/**
 * Validates a host's app resources. There is nothing to stage: the `current` link only names a release, and the
 * release itself is fetched, exported and built by the prepare stage, which runs after validation (a failing build
 * is APP_BUILD_FAILED there). Two apps of one name are refused by render (TARGET_CONFLICT on their link).
 */
import type { Problem } from '../../reconciler/errors.js';
import type { ValidateInput } from '../types.js';

/** Checks the app links of one host: every value was checked by the schema and render already. */
export async function validateApps(input: ValidateInput): Promise<Problem[]> {
  return input.files.filter((file) => !file.link || !file.app).map((file) => ({
    code: 'APP_NOT_LINK',
    file: file.source.file,
    message: `${file.path}: an app resource renders only its current link`,
  }));
}
