/**
 * Renders an app resource into the one path it manages directly: the `current` symlink of /srv/apps/<name>, whose
 * target (`releases/<sha>`) the prepare stage fills in once it has resolved and built the release. Handlebars work
 * in every value (`rev: "{{lod.rev}}"`), so a host file can pin per host.
 */
import { declProblem, fileBase } from '../common.js';
import { RenderProblems, type AppBuild, type AppIntent, type RenderInput, type RenderedFile } from '../types.js';
import type { Problem } from '../../reconciler/errors.js';

/** The spec fields of an app resource after the schema check. */
interface AppSpec {
  repo: string;
  rev?: string;
  tag?: string;
  follow?: string;
  user?: string;
  build?: { command: string[]; timeoutSeconds?: number; env?: Record<string, string>; network?: boolean };
  shared?: string[];
  keep?: number;
  units?: string[];
}

/** Where apps live on a host. */
export const APPS_DIR = '/srv/apps';

/** The default build timeout (seconds). */
export const DEFAULT_BUILD_TIMEOUT_SECONDS = 300;

/** Releases kept by default. */
export const DEFAULT_KEEP_RELEASES = 5;

/** The link target of a release: relative, so the same link is right under a sandbox root and on a VM. */
export function releaseLink(sha: string): string {
  return `releases/${sha}`;
}

/** The `current` symlink of an app. */
export function currentPath(app: string): string {
  return `${APPS_DIR}/${app}/current`;
}

/** A branch or tag name the prepare stage may fetch (a narrower rule than git's; never an option). */
const REF_NAME = /^(?!-)(?!.*\.\.)(?!.*\/\/)[A-Za-z0-9._/-]+(?<![./])$/;

/** Renders one app resource. Throws RenderProblems for bad values (a rev that is not a full SHA, a bad ref). */
export function renderApp(input: RenderInput): RenderedFile[] {
  const spec = input.resource.spec as unknown as AppSpec;
  const value = (text: string): string => (text.includes('{{') ? renderValue(input, text) : text);
  const problems: Problem[] = [];
  const name = input.resource.name;
  const intent: AppIntent = {
    name,
    repo: value(spec.repo),
    user: value(spec.user ?? name),
    shared: [...(spec.shared ?? [])],
    keep: spec.keep ?? DEFAULT_KEEP_RELEASES,
    units: [...new Set(spec.units ?? [])].sort(),
  };
  if (spec.rev !== undefined) intent.rev = value(spec.rev);
  if (spec.tag !== undefined) intent.tag = value(spec.tag);
  if (spec.follow !== undefined) intent.follow = value(spec.follow);
  if (spec.build) intent.build = buildOf(spec.build, value);
  if (intent.rev !== undefined && !/^[0-9a-f]{40}$/.test(intent.rev)) {
    problems.push(declProblem(input, 'APP_REV_INVALID', `app ${name}: rev must be a full 40-hex commit SHA (a tag or branch goes in tag: or follow:), not ${JSON.stringify(intent.rev)}`));
  }
  for (const key of ['tag', 'follow'] as const) {
    const ref = intent[key];
    if (ref !== undefined && !REF_NAME.test(ref)) problems.push(declProblem(input, 'APP_REF_INVALID', `app ${name}: ${key} ${JSON.stringify(ref)} is not a valid ref name`));
  }
  if (intent.repo.startsWith('-') || intent.repo.trim() !== intent.repo) {
    problems.push(declProblem(input, 'APP_REPO_INVALID', `app ${name}: repo ${JSON.stringify(intent.repo)} is not a URL or an absolute path`));
  } else if (/^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(intent.repo)) {
    // The URL is recorded in generations and history: a password there would be kept and shown.
    problems.push(declProblem(input, 'APP_REPO_INVALID', `app ${name}: repo carries a password in its URL: credentials go in the host config (apps.auth), never in the repo`));
  }
  if (!/^[a-z_][a-z0-9_-]*$/.test(intent.user)) problems.push(declProblem(input, 'APP_USER_INVALID', `app ${name}: user ${JSON.stringify(intent.user)} is not a valid user name`));
  const program = intent.build?.command[0] ?? '';
  if (program.includes('/') && !program.startsWith('/') && !program.startsWith('./')) {
    problems.push(declProblem(input, 'APP_BUILD_COMMAND', `app ${name}: build command ${program} must be a name on PATH, an absolute path or ./<file of the release>`));
  }
  if (problems.length > 0) throw new RenderProblems(problems);
  return [
    {
      ...fileBase(input),
      owner: 'root',
      group: 'root',
      path: currentPath(name),
      // Filled in by prepare once the release is resolved; a pinned rev is known already.
      content: intent.rev ? releaseLink(intent.rev) : '',
      mode: 0o777,
      link: true,
      app: intent,
      // A standby installs and switches the release but starts nothing.
      ...(input.host.standby || intent.units.length === 0 ? {} : { onChange: { restart: intent.units, reload: [] } }),
    },
  ];
}

function buildOf(build: NonNullable<AppSpec['build']>, value: (text: string) => string): AppBuild {
  return {
    command: build.command.map(value),
    timeoutSeconds: build.timeoutSeconds ?? DEFAULT_BUILD_TIMEOUT_SECONDS,
    env: Object.fromEntries(Object.entries(build.env ?? {}).map(([key, text]) => [key, value(text)])),
    network: build.network === true,
  };
}

/** One value of the spec through the template engine (strict: an unknown variable is an error naming it). */
function renderValue(input: RenderInput, text: string): string {
  const resource = { ...input.resource, spec: { content: text } };
  return input.engine.render(resource, input.data, { allowSecrets: false }).text;
}
