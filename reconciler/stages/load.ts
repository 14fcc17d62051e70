/**
 * The load stage: reads an exported revision of the desired-state repo, parses every YAML file, checks it against
 * its JSON schema, resolves roles, refuses symlinks that leave the repo, and scans for committed secrets. All
 * problems of the revision are reported together. Reading the files (symlinks, encoding, the secret scan) is
 * source/repo-files.ts.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { InvalidRevisionError, type Problem } from '../errors.js';
import type {
  DesiredState,
  EdgeConfig,
  HealthCheckSpec,
  HookPhase,
  HostSpec,
  ResourceDecl,
  ResourceKind,
  RoleSpec,
  SourceRef,
} from '../model.js';
import { edgeSchema, hostSchema, roleSchema } from '../config/repo-schemas.js';
import { parseYaml, schemaProblems, type YamlSource } from '../config/yaml-source.js';
import type { TreeFiles } from '../source/git-tree.js';
import { readRepoDir, readRepoTree } from '../source/repo-files.js';
import { findLiteralSecrets } from '../../renderers/env-file/secret-scan.js';

const NAME = /^[a-z0-9][a-z0-9-]*$/;

interface Validators {
  edge: ValidateFunction;
  host: ValidateFunction;
  role: ValidateFunction;
}

let validators: Validators | undefined;

/** Compiled once per process: ajv compilation is the slowest part of a no-op reconcile otherwise. */
function getValidators(): Validators {
  if (!validators) {
    const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false });
    validators = { edge: ajv.compile(edgeSchema), host: ajv.compile(hostSchema), role: ajv.compile(roleSchema()) };
  }
  return validators;
}

/**
 * Loads the revision at `repoDir`, or from `tree` when git handed it over in memory; throws
 * InvalidRevisionError('load') listing every problem.
 */
export async function loadDesiredState(repoDir: string, tree?: TreeFiles): Promise<DesiredState> {
  const read = tree ? readRepoTree(tree) : await readRepoDir(repoDir);
  const problems: Problem[] = [...read.problems];
  const files = read.texts;
  const v = getValidators();

  const edgeText = files.get('edge.yaml');
  let edge: EdgeConfig | undefined;
  let edgeSource: YamlSource | undefined;
  if (edgeText === undefined) {
    if (!read.paths.has('edge.yaml')) problems.push({ code: 'EDGE_MISSING', file: 'edge.yaml', message: 'edge.yaml is missing at the repo root' });
  } else {
    edgeSource = parseChecked('edge.yaml', edgeText, v.edge, problems);
    if (edgeSource) edge = toEdgeConfig(edgeSource);
  }

  const hosts = new Map<string, HostSpec>();
  const hostSources = new Map<string, YamlSource>();
  const roles = new Map<string, RoleSpec>();
  const templates = new Map<string, string>();
  for (const [file, text] of files) {
    const hostMatch = /^hosts\/([^/]+)\.ya?ml$/.exec(file);
    const roleMatch = /^roles\/([^/]+)\/role\.ya?ml$/.exec(file);
    if (hostMatch?.[1]) {
      const name = hostMatch[1];
      if (!NAME.test(name)) {
        problems.push({ code: 'HOST_NAME', file, message: `host name "${name}" must match ${NAME.source}` });
        continue;
      }
      const source = parseChecked(file, text, v.host, problems);
      if (source) {
        hosts.set(name, toHost(name, source));
        hostSources.set(name, source);
      }
    } else if (roleMatch?.[1]) {
      const name = roleMatch[1];
      if (!NAME.test(name)) {
        problems.push({ code: 'ROLE_NAME', file, message: `role name "${name}" must match ${NAME.source}` });
        continue;
      }
      const source = parseChecked(file, text, v.role, problems);
      if (source) roles.set(name, toRole(name, source, problems));
    } else if (/^roles\/[^/]+\/templates\//.test(file)) {
      templates.set(file, text);
    }
  }
  if (![...read.paths].some((file) => /^hosts\/[^/]+\.ya?ml$/.test(file))) {
    problems.push({ code: 'NO_HOSTS', file: 'hosts/', message: 'the repo declares no host (hosts/<name>.yaml)' });
  }
  problems.push(...crossCheck(hosts, hostSources, roles, read.paths));
  problems.push(...scanEnvTemplates(roles, templates));
  // A host whose file is there but broken is already reported: the waves only need its file to exist.
  const declared = new Set([...read.paths].map((path) => /^hosts\/([^/]+)\.ya?ml$/.exec(path)?.[1]).filter((name) => name !== undefined));
  if (edge && edgeSource && declared.size > 0) problems.push(...waveProblems(edge, edgeSource, declared));
  if (problems.length > 0 || !edge) throw new InvalidRevisionError('load', sortProblems(problems));
  return { repoDir, edge, hosts: sortedMap(hosts), roles: sortedMap(roles), templates };
}

function parseChecked(file: string, text: string, validate: ValidateFunction, problems: Problem[]): YamlSource | undefined {
  const parsed = parseYaml(file, text);
  problems.push(...parsed.problems);
  if (!parsed.source) return undefined;
  const schema = schemaProblems(parsed.source, validate);
  problems.push(...schema);
  return schema.length === 0 ? parsed.source : undefined;
}

/** Every host of `waves` must exist, and be in one wave only: a typo would make a whole wave wait for ever. */
function waveProblems(edge: EdgeConfig, source: YamlSource, hosts: ReadonlySet<string>): Problem[] {
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  edge.waves.forEach((wave, w) => {
    wave.forEach((host, i) => {
      const path = `/waves/${w}/${i}`;
      const at = { file: 'edge.yaml', line: source.lineOf(path), path };
      if (!hosts.has(host)) problems.push({ code: 'WAVE_HOST_UNKNOWN', ...at, message: `wave ${w + 1} names host "${host}", which has no hosts/${host}.yaml` });
      const earlier = seen.get(host);
      if (earlier !== undefined) problems.push({ code: 'WAVE_HOST_TWICE', ...at, message: `host "${host}" is in wave ${earlier + 1} and wave ${w + 1}: a host belongs to one wave` });
      else seen.set(host, w);
    });
  });
  return problems;
}

function ref(source: YamlSource, path: string): SourceRef {
  return { file: source.file, line: source.lineOf(path), path };
}

function toEdgeConfig(source: YamlSource): EdgeConfig {
  const value = source.value as {
    guards?: Partial<EdgeConfig['guards']>;
    validate?: { externalExecPrefixes?: string[] };
    health?: Partial<EdgeConfig['health']>;
    waves?: string[][];
  };
  return {
    version: 1,
    guards: {
      allowManagementCut: value.guards?.allowManagementCut ?? false,
      allowSshFromAnywhere: value.guards?.allowSshFromAnywhere ?? false,
      managementInterface: value.guards?.managementInterface ?? 'tailscale0',
      allowHostLockout: value.guards?.allowHostLockout ?? false,
    },
    externalExecPrefixes: value.validate?.externalExecPrefixes ?? ['/srv/apps', '/opt'],
    health: { deadlineSeconds: value.health?.deadlineSeconds ?? 60, intervalSeconds: value.health?.intervalSeconds ?? 2 },
    waves: value.waves ?? [],
    source: ref(source, ''),
  };
}

function toHealth(source: YamlSource, base: string, list: Record<string, unknown>[] | undefined): HealthCheckSpec[] {
  return (list ?? []).map((check, index) => ({
    name: String(check.name),
    type: check.type as HealthCheckSpec['type'],
    spec: check,
    source: ref(source, `${base}/${index}`),
  }));
}

function toHost(name: string, source: YamlSource): HostSpec {
  const value = source.value as {
    address: string;
    standby?: boolean;
    roles: string[];
    vars?: Record<string, unknown>;
    routes?: { domain: string; port: number; healthPath?: string }[];
    health?: Record<string, unknown>[];
  };
  return {
    name,
    address: value.address,
    roles: value.roles,
    standby: value.standby ?? false,
    vars: value.vars ?? {},
    routes: (value.routes ?? []).map((route, index) => ({ ...route, source: ref(source, `/routes/${index}`) })),
    health: toHealth(source, '/health', value.health),
    source: ref(source, ''),
  };
}

/** A hook as role.yaml writes it: the short form (the script) or the object form. */
type HookDecl = string | { script: string; network?: boolean };

function toRole(name: string, source: YamlSource, problems: Problem[]): RoleSpec {
  const value = source.value as {
    vars?: Record<string, unknown>;
    resources?: (Record<string, unknown> & { kind: ResourceKind; name: string })[];
    health?: Record<string, unknown>[];
    hooks?: Partial<Record<HookPhase, HookDecl>>;
  };
  const seen = new Set<string>();
  const resources: ResourceDecl[] = [];
  (value.resources ?? []).forEach((resource, index) => {
    const { kind, name: resourceName, ...spec } = resource;
    const id = `${kind}/${resourceName}`;
    if (seen.has(id)) {
      problems.push({
        code: 'RESOURCE_DUPLICATE',
        ...ref(source, `/resources/${index}`),
        message: `role ${name} declares ${id} twice`,
      });
    }
    seen.add(id);
    resources.push({ kind, name: resourceName, role: name, spec, source: ref(source, `/resources/${index}`) });
  });
  return {
    name,
    vars: value.vars ?? {},
    resources,
    health: toHealth(source, '/health', value.health),
    hooks: toHooks(value.hooks ?? {}),
    source: ref(source, ''),
  };
}

/** The short form `phase: script` and the object form `phase: { script, network }`, as one shape. */
function toHooks(hooks: Partial<Record<HookPhase, HookDecl>>): RoleSpec['hooks'] {
  const specs: RoleSpec['hooks'] = {};
  for (const [phase, hook] of Object.entries(hooks) as [HookPhase, HookDecl][]) {
    specs[phase] = typeof hook === 'string' ? { script: hook, network: false } : { script: hook.script, network: hook.network ?? false };
  }
  return specs;
}

/** Roles that hosts name must exist; hooks that roles name must be in the repo. */
function crossCheck(
  hosts: Map<string, HostSpec>,
  hostSources: Map<string, YamlSource>,
  roles: Map<string, RoleSpec>,
  files: ReadonlySet<string>,
): Problem[] {
  const problems: Problem[] = [];
  for (const host of hosts.values()) {
    const source = hostSources.get(host.name);
    host.roles.forEach((role, index) => {
      // A role whose file exists but is broken has its own problems already.
      if (roles.has(role) || files.has(`roles/${role}/role.yaml`)) return;
      problems.push({
        code: 'ROLE_UNKNOWN',
        file: host.source.file,
        line: source?.lineOf(`/roles/${index}`),
        path: `/roles/${index}`,
        message: `host ${host.name} uses role "${role}", which has no roles/${role}/role.yaml`,
      });
    });
  }
  for (const role of roles.values()) {
    for (const [phase, hook] of Object.entries(role.hooks)) {
      const file = `roles/${role.name}/${hook.script}`;
      if (!files.has(file)) {
        problems.push({ code: 'HOOK_MISSING', file: role.source.file, path: `/hooks/${phase}`, message: `${phase} hook ${file} does not exist` });
      }
    }
  }
  return problems;
}

/** Env-file templates may not hold literal values for secret-looking keys. */
function scanEnvTemplates(roles: Map<string, RoleSpec>, templates: Map<string, string>): Problem[] {
  const problems: Problem[] = [];
  for (const role of roles.values()) {
    for (const resource of role.resources) {
      if (resource.kind !== 'env-file') continue;
      const { template, content } = resource.spec as { template?: string; content?: string };
      if (typeof content === 'string') {
        problems.push(...findLiteralSecrets(content, resource.source.file));
      } else if (typeof template === 'string') {
        const file = `roles/${role.name}/templates/${template}`;
        const text = templates.get(file);
        if (text !== undefined) problems.push(...findLiteralSecrets(text, file));
      }
    }
  }
  return problems;
}

function sortedMap<T>(map: Map<string, T>): Map<string, T> {
  return new Map([...map].sort(([a], [b]) => (a < b ? -1 : 1)));
}

function sortProblems(problems: Problem[]): Problem[] {
  return [...problems].sort(
    (a, b) => (a.file ?? '').localeCompare(b.file ?? '') || (a.line ?? 0) - (b.line ?? 0),
  );
}
