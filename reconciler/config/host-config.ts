/**
 * The host config (`/etc/edge-reconciler/config.yaml`): loaded once at start, checked against its JSON Schema
 * (host-config-schema.ts) with defaults filled in, then against the rules a schema cannot say (ref or tagPattern,
 * a safe listen address, signature settings, time zone and crons, secret files that exist and are private).
 * Every problem names the config file, the line and the key; a secret's content never appears in one.
 */
import { readFile } from 'node:fs/promises';
import { Ajv, type ValidateFunction } from 'ajv';
import { isMap, isScalar, LineCounter, parse as parseYamlValue, parseDocument } from 'yaml';
import { EdgeError, formatProblem, type Problem } from '../errors.js';
import { parseRepo, refProblem, tagPatternProblem, withoutUserinfo } from './git-names.js';
import { fileProblems } from './host-config-files.js';
import { forgeProblems, forgeTokenOf } from './forge-config.js';
import { hostConfigSchema } from './host-config-schema.js';
import { formatListen, isWildcard, parseListenAddress } from './listen-address.js';
import { cronProblem, isValidTimeZone, type MaintenanceConfig } from './schedule.js';
import { parseYaml, schemaProblems, type YamlSource } from './yaml-source.js';

export { defaultHostName, renderDefaultConfig, type DefaultConfigOptions } from './host-config-template.js';
export { parseListen } from './listen-address.js';

/** Where the agent looks for its config unless told otherwise. */
export const DEFAULT_CONFIG_PATH = '/etc/edge-reconciler/config.yaml';

/** What the agent does about a managed file changed behind its back. */
export type DriftPolicy = 'heal' | 'report';

/** The loaded host config, defaults filled in. Exactly one of `ref` and `tagPattern` is set. */
export interface HostConfig {
  repo: string;
  ref?: string;
  tagPattern?: string;
  /** The repo's folder holding the desired state; absent: the root. */
  path?: string;
  host: string;
  root: string;
  stateDir: string;
  secretsDir: string;
  /** `host:port` (`[v6]:port`); parse it with `parseListen`. */
  listen: string;
  allowPublicListen: boolean;
  poll: { enabled: boolean; intervalSeconds: number; jitterSeconds: number };
  /** `secret` is the content of `secretFile` when enabled; non-enumerable, so it never reaches JSON or logs. */
  webhook: { enabled: boolean; secretFile?: string; readonly secret?: string };
  auth: { sshKeyFile?: string; knownHostsFile?: string; tokenFile?: string };
  /** App repos: URL rewrites (git's insteadOf) and credentials per URL prefix. */
  apps: {
    insteadOf: Record<string, string>;
    auth: { prefix: string; sshKeyFile?: string; knownHostsFile?: string; tokenFile?: string; tokenUser?: string }[];
    fetchTimeoutSeconds: number;
  };
  trust: { requireSignatures: boolean; allowedSignersFile?: string; gpgHome?: string; allowRewinds: boolean };
  limits: { maxFileBytes: number; maxTreeBytes: number };
  drift: { policy: DriftPolicy; watch: boolean };
  deadmanSeconds: number;
  keepGenerations: number;
  hookTimeoutSeconds: number;
  maintenance: MaintenanceConfig;
  backoff: { initialSeconds: number; maxSeconds: number };
  /** Empty (`{}`) without a forge; `token` is the content of `tokenFile`, non-enumerable like the webhook secret. */
  forge: ForgeConfig;
  waves: WavesConfig;
  /** The fleet page: how long a peer may take to answer, and the page's refresh. */
  fleet: { peerTimeoutSeconds: number; refreshSeconds: number };
}

/** The host config's `forge` section. */
export interface ForgeConfig {
  kind?: 'github' | 'gitea';
  baseUrl?: string;
  tokenFile?: string;
  owner?: string;
  repo?: string;
  fleetUrl?: string;
  deployments: boolean;
  readonly token?: string;
}

/** The host config's `waves` section. */
export interface WavesConfig {
  enabled: boolean;
  timeoutSeconds: number;
  recheckSeconds: number;
  peerPort: number;
  peerScheme: 'http' | 'https';
  peers: Record<string, string>;
}

let validator: ValidateFunction | undefined;

/** Compiled once per process; fills the schema's defaults in for missing and empty keys (`auth:` alone = defaults). */
function getValidator(): ValidateFunction {
  validator ??= new Ajv({ allErrors: true, strict: false, useDefaults: 'empty' }).compile(hostConfigSchema);
  return validator;
}

/** Loads and checks the host config; throws CONFIG_MISSING (with a hint to run init) or CONFIG_INVALID. */
export async function loadHostConfig(path: string = DEFAULT_CONFIG_PATH): Promise<HostConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const message = `host config ${path} does not exist: run edge-reconciler init --config ${path} --repo URL --host NAME to write a commented default`;
      throw new EdgeError('CONFIG_MISSING', message, { stage: 'fetch', retry: 'invalid', problems: [{ code: 'CONFIG_MISSING', file: path, message }], cause: error });
    }
    throw invalid(path, [{ code: 'CONFIG_INVALID', file: path, message: `cannot read host config ${path}: ${code ?? String(error)}` }], error);
  }
  return parseHostConfig(path, text);
}

/** Checks config text as if read from `file`; throws CONFIG_INVALID listing every problem. */
export async function parseHostConfig(file: string, text: string): Promise<HostConfig> {
  const parsed = parseYaml(file, text);
  if (!parsed.source) throw invalid(file, parsed.problems);
  const source = parsed.source;
  const explicitRef = isRecord(source.value) && typeof source.value.ref === 'string' && source.value.ref !== '';
  const validate = getValidator();
  const problems = pointUnknownFieldsAtTheirKeys(text, schemaProblems(source, validate), validate);
  if (!isRecord(source.value)) throw invalid(file, problems);
  const value = source.value;
  problems.push(...crossFieldProblems(source, value, explicitRef));
  const secret = await fileProblems(source, value, problems);
  const forgeToken = await forgeTokenOf(source, value, problems);
  if (problems.length > 0) throw invalid(file, problems);

  const config = value as unknown as HostConfig;
  if (config.tagPattern !== undefined) delete config.ref;
  // The server binds exactly the address that was checked, in its normal form.
  config.listen = formatListen(parseListenAddress(config.listen));
  if (secret !== undefined) Object.defineProperty(config.webhook, 'secret', { value: secret, enumerable: false });
  if (forgeToken !== undefined) Object.defineProperty(config.forge, 'token', { value: forgeToken, enumerable: false });
  return config;
}

/** schemaProblems puts an unknown field at its parent's line; the operator wants the line of the typo itself. */
function pointUnknownFieldsAtTheirKeys(text: string, problems: Problem[], validate: ValidateFunction): Problem[] {
  const unknown = (validate.errors ?? []).filter((error) => error.keyword === 'additionalProperties');
  if (unknown.length === 0) return problems;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  for (const error of unknown) {
    const field = String((error.params as { additionalProperty: unknown }).additionalProperty);
    const parent = doc.getIn(pointerKeys(error.instancePath), true) ?? (error.instancePath === '' ? doc.contents : undefined);
    if (!isMap(parent)) continue;
    const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === field);
    const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
    const problem = problems.find((p) => p.path === (error.instancePath || '/') && p.message === `unknown field "${field}"`);
    if (range && problem) problem.line = lineCounter.linePos(range[0]).line;
  }
  return problems;
}

function pointerKeys(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment));
}

function invalid(file: string, problems: Problem[], cause?: unknown): EdgeError {
  const first = problems[0];
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  return new EdgeError('CONFIG_INVALID', `host config ${file} is invalid: ${first ? formatProblem(first) : 'no details'}${more}`, {
    stage: 'fetch',
    retry: 'invalid',
    problems,
    cause,
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function section(value: Record<string, unknown>, key: string): Record<string, unknown> {
  const inner = value[key];
  return isRecord(inner) ? inner : {};
}

/** The rules between keys; each guards its own types, so they run beside the schema's problems. */
function crossFieldProblems(source: YamlSource, value: Record<string, unknown>, explicitRef: boolean): Problem[] {
  const problems: Problem[] = [];
  const at = (pointer: string, message: string) => {
    problems.push({ code: 'CONFIG_INVALID', file: source.file, line: source.lineOf(pointer), path: pointer, message });
  };

  if (explicitRef && typeof value.tagPattern === 'string') {
    at('/tagPattern', 'set either "ref" (a branch) or "tagPattern" (tags), not both');
  }

  problems.push(...gitProblems(source, value, explicitRef));

  if (typeof value.listen === 'string') {
    try {
      const listen = parseListenAddress(value.listen);
      if (isWildcard(listen.host) && value.allowPublicListen !== true) {
        at('/listen', `"listen" ${value.listen} would listen on every interface: use 127.0.0.1 or the tailscale address, or set "allowPublicListen: true"`);
      }
    } catch (error) {
      at('/listen', `"listen" "${value.listen}" ${(error as Error).message}`);
    }
  }

  const poll = section(value, 'poll');
  if (typeof poll.intervalSeconds === 'number' && typeof poll.jitterSeconds === 'number' && poll.jitterSeconds >= poll.intervalSeconds) {
    at('/poll/jitterSeconds', '"poll.jitterSeconds" must be less than "poll.intervalSeconds"');
  }

  const webhook = section(value, 'webhook');
  if (webhook.enabled === true && webhook.secretFile === undefined) {
    at('/webhook', '"webhook.enabled" needs "webhook.secretFile"');
  }

  const trust = section(value, 'trust');
  if (trust.requireSignatures === true && trust.allowedSignersFile === undefined && trust.gpgHome === undefined) {
    at('/trust/requireSignatures', '"trust.requireSignatures" needs "trust.allowedSignersFile" or "trust.gpgHome"');
  }

  const backoff = section(value, 'backoff');
  if (typeof backoff.initialSeconds === 'number' && typeof backoff.maxSeconds === 'number' && backoff.maxSeconds < backoff.initialSeconds) {
    at('/backoff/maxSeconds', '"backoff.maxSeconds" must be at least "backoff.initialSeconds"');
  }

  problems.push(...forgeProblems(source, value));

  const maintenance = section(value, 'maintenance');
  const timezone = maintenance.timezone;
  const zoneOk = typeof timezone === 'string' && isValidTimeZone(timezone);
  if (typeof timezone === 'string' && !zoneOk) {
    at('/maintenance/timezone', `"maintenance.timezone" "${timezone}" is not an IANA time zone (e.g. UTC, Europe/Berlin)`);
  }
  if (Array.isArray(maintenance.windows)) {
    maintenance.windows.forEach((window: unknown, index) => {
      if (!isRecord(window) || typeof window.cron !== 'string') return;
      const problem = cronProblem(window.cron, zoneOk ? (timezone as string) : 'UTC');
      if (problem) at(`/maintenance/windows/${index}/cron`, problem);
    });
  }
  return problems;
}

/** The values that reach git: the repo, the ref or tag pattern, and the credentials that go with the repo. */
function gitProblems(source: YamlSource, value: Record<string, unknown>, explicitRef: boolean): Problem[] {
  const problems: Problem[] = [];
  const at = (pointer: string, message: string) => {
    problems.push({ code: 'CONFIG_INVALID', file: source.file, line: source.lineOf(pointer), path: pointer, message });
  };
  const auth = section(value, 'auth');
  if (typeof value.repo === 'string' && value.repo !== '') {
    try {
      const repo = parseRepo(value.repo);
      if (auth.tokenFile !== undefined && repo.kind !== 'http') {
        at('/auth/tokenFile', `"auth.tokenFile" is for http(s) URLs, and "repo" ${withoutUserinfo(value.repo)} is not one (use "auth.sshKeyFile" for ssh)`);
      } else if (auth.tokenFile !== undefined && repo.credentials) {
        at('/auth/tokenFile', '"repo" carries a password in its URL and "auth.tokenFile" is set: keep the token in the token file only');
      }
    } catch (error) {
      at('/repo', `"repo" ${JSON.stringify(withoutUserinfo(value.repo))} ${(error as Error).message}`);
    }
  }
  if (explicitRef && typeof value.ref === 'string') {
    const problem = refProblem(value.ref);
    if (problem) at('/ref', `"ref" ${JSON.stringify(value.ref)} ${problem}`);
  }
  if (typeof value.tagPattern === 'string') {
    const problem = tagPatternProblem(value.tagPattern);
    if (problem) at('/tagPattern', `"tagPattern" ${JSON.stringify(value.tagPattern)} ${problem}`);
  }
  return problems;
}

/**
 * The state dir a possibly broken config names, for commands that must work in an emergency (suspend, resume):
 * undefined when the file is missing, does not parse, or names no absolute `stateDir`.
 */
export async function configuredStateDir(path: string = DEFAULT_CONFIG_PATH): Promise<string | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const value: unknown = parseYamlValue(text);
    return isRecord(value) && typeof value.stateDir === 'string' && value.stateDir.startsWith('/') ? value.stateDir : undefined;
  } catch {
    return undefined;
  }
}
