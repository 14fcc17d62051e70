/** A host and its template data for renderer unit tests, so each test states only what it cares about. */
import type { HostSpec } from '../../reconciler/model.js';
import { placeholderSecrets, TemplateEngine, type SecretSource } from '../../renderers/template.js';
import type { RouteView, TemplateData } from '../../renderers/types.js';

/** A host named `name` with one role; override any field. */
export function testHost(name: string, role: string, overrides: Partial<HostSpec> = {}): HostSpec {
  return {
    name,
    address: '100.64.0.11',
    roles: [role],
    standby: false,
    vars: {},
    routes: [],
    health: [],
    source: { file: `hosts/${name}.yaml` },
    ...overrides,
  };
}

/** The data templates of `host` see, with these vars and router routes. */
export function testData(host: HostSpec, vars: Record<string, unknown> = {}, routes: RouteView[] = []): TemplateData {
  const view = { name: host.name, address: host.address, standby: host.standby, roles: host.roles, vars };
  return { host: view, vars, inventory: { hosts: [], routes } };
}

/** A template engine over `templates` (file name → text) of one role's templates folder. */
export function testEngine(role: string, templates: Record<string, string>, secrets: SecretSource = placeholderSecrets): TemplateEngine {
  return new TemplateEngine(new Map(Object.entries(templates).map(([file, text]) => [`roles/${role}/templates/${file}`, text])), secrets);
}
