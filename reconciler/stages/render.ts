/**
 * The render stage: every resource of a host's roles becomes files, through its kind's renderer. Pure: reads the
 * loaded desired state and the secrets it is given, writes nothing, runs nothing.
 */
import type { DesiredState, HostSpec, ResourceDecl } from '../model.js';
import { InvalidRevisionError, type Problem } from '../errors.js';
import { checkTargetPath, type PathPolicy } from '../host/path-policy.js';
import { rendererFor } from '../../renderers/registry.js';
import { TemplateEngine, type SecretSource } from '../../renderers/template.js';
import { RenderProblems, type HostView, type RenderedFile, type RouteView, type TemplateData } from '../../renderers/types.js';

/** The files one host must hold, sorted by path. */
export interface RenderedHost {
  host: HostSpec;
  files: RenderedFile[];
}

/** Renders every resource of `hostName`; throws InvalidRevisionError with every problem of every resource. */
export function renderHost(
  state: DesiredState,
  hostName: string,
  secrets: SecretSource,
  policy: PathPolicy,
): RenderedHost {
  const host = state.hosts.get(hostName);
  if (!host) {
    const known = [...state.hosts.keys()].sort().join(', ');
    throw new InvalidRevisionError('render', [
      { code: 'HOST_UNKNOWN', file: 'hosts/', message: `host "${hostName}" has no hosts/${hostName}.yaml (known: ${known})` },
    ]);
  }
  const data = buildTemplateData(state, host);
  const engine = new TemplateEngine(state.templates, secrets);
  const problems: Problem[] = [];
  const files: RenderedFile[] = [];
  for (const resource of resourcesOf(state, host)) {
    try {
      files.push(...rendererFor(resource.kind).render({ resource, host, data, engine }));
    } catch (error) {
      if (!(error instanceof RenderProblems)) throw error;
      problems.push(...error.problems);
    }
  }
  problems.push(...checkTargets(files, policy));
  if (problems.length > 0) throw new InvalidRevisionError('render', problems);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { host, files };
}

/** The resources of a host, role by role in the host's order. */
export function resourcesOf(state: DesiredState, host: HostSpec): ResourceDecl[] {
  return host.roles.flatMap((role) => state.roles.get(role)?.resources ?? []);
}

/** The data every template of `host` sees: the host, merged vars and the inventory with the router's routes. */
export function buildTemplateData(state: DesiredState, host: HostSpec): TemplateData {
  const hosts = [...state.hosts.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const view = (h: HostSpec): HostView => ({
    name: h.name,
    address: h.address,
    standby: h.standby,
    roles: [...h.roles],
    vars: mergeVars(state, h),
  });
  const self = view(host);
  return { host: self, vars: self.vars, inventory: { hosts: hosts.map(view), routes: collectRoutes(hosts) } };
}

/** Role defaults, in role order, deep-merged under the host's own vars (arrays are replaced, not merged). */
export function mergeVars(state: DesiredState, host: HostSpec): Record<string, unknown> {
  let merged: Record<string, unknown> = {};
  for (const role of host.roles) merged = deepMerge(merged, state.roles.get(role)?.vars ?? {});
  return deepMerge(merged, host.vars);
}

/** Every domain any host declares, with active upstreams before standbys, sorted for deterministic output. */
export function collectRoutes(hosts: HostSpec[]): RouteView[] {
  const byDomain = new Map<string, RouteView>();
  for (const host of hosts) {
    for (const route of host.routes) {
      let view = byDomain.get(route.domain);
      if (!view) {
        view = { domain: route.domain, upstreams: [] };
        byDomain.set(route.domain, view);
      }
      if (route.healthPath && !view.healthPath) view.healthPath = route.healthPath;
      view.upstreams.push({ host: host.name, address: host.address, port: route.port, standby: host.standby });
    }
  }
  const routes = [...byDomain.values()].sort((a, b) => (a.domain < b.domain ? -1 : 1));
  for (const route of routes) {
    route.upstreams.sort((a, b) => Number(a.standby) - Number(b.standby) || (a.host < b.host ? -1 : 1));
  }
  return routes;
}

function checkTargets(files: RenderedFile[], policy: PathPolicy): Problem[] {
  const problems: Problem[] = [];
  const owners = new Map<string, RenderedFile>();
  for (const file of files) {
    const problem = checkTargetPath(file.path, file.kind, policy) ?? checkMode(file);
    if (problem) problems.push({ ...problem, file: file.source.file, line: file.source.line, path: file.source.path });
    const previous = owners.get(file.path);
    if (previous) {
      problems.push({
        code: 'TARGET_CONFLICT',
        file: file.source.file,
        line: file.source.line,
        message: `${file.resource} and ${previous.resource} both write ${file.path}`,
      });
    }
    owners.set(file.path, file);
  }
  return problems;
}

/** Refuses modes that let others change a file, special bits, and secrets others may read. */
function checkMode(file: RenderedFile): Omit<Problem, 'file'> | undefined {
  // A symlink has no mode of its own (lstat says 0777); what it points at is checked where it is made.
  if (file.link) return undefined;
  const mode = `0${file.mode.toString(8).padStart(3, '0')}`;
  if (file.mode & 0o7000) {
    return { code: 'FILE_MODE_UNSAFE', message: `${file.path} mode ${mode} sets setuid, setgid or sticky bits` };
  }
  if (file.mode & 0o022) {
    return { code: 'FILE_MODE_UNSAFE', message: `${file.path} mode ${mode} lets ${file.mode & 0o002 ? 'everyone' : 'its group'} change it: use 0644 or tighter` };
  }
  if (file.sensitive && file.mode & 0o077) {
    return { code: 'FILE_MODE_UNSAFE', message: `${file.path} holds secrets but mode ${mode} lets others read it: use 0600 or 0400` };
  }
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}
