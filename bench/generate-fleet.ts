/**
 * The fleet workload: one desired-state repo with many hosts, the real growth of the product. `hosts` app hosts
 * (`edge-001`, ...) run 5 apps each out of a pool of 50 app roles (hosts in groups of 10 run the same 5, as
 * replicas do), each declaring a route per app; one router host (`router`) serves every route from the inventory.
 * The app roles and shared roles are the single-host workload's (generate.ts). Deterministic: the same `hosts`
 * always writes the same bytes.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  appEnvTemplate,
  appName,
  appPort,
  appRole,
  appSiteTemplate,
  appUnitTemplate,
  BASE_ROLE,
  CADDYFILE_TEMPLATE,
  EDGE_YAML,
  JOURNALD_TEMPLATE,
  LOGROTATE_TEMPLATE,
  TMPFILES_TEMPLATE,
  WEB_ROLE,
  writeWorkloadSecrets,
} from './generate.js';

/** The app roles the hosts draw from. */
export const APP_POOL = 50;

/** Apps per app host. */
export const APPS_PER_HOST = 5;

/** The router host's name. */
export const ROUTER_HOST = 'router';

/** The name of app host `h` (1-based): `edge-001`. */
export function fleetHostName(h: number): string {
  return `edge-${String(h).padStart(3, '0')}`;
}

/** The apps (1-based pool indexes) of app host `h`: groups of 10 hosts share 5 apps. */
export function fleetHostApps(h: number): number[] {
  const group = Math.floor((h - 1) / 10);
  return Array.from({ length: APPS_PER_HOST }, (_, k) => ((group * APPS_PER_HOST + k) % APP_POOL) + 1);
}

function appHostYaml(h: number): string {
  const apps = fleetHostApps(h);
  return `address: 100.64.${Math.floor(h / 250) + 1}.${(h % 250) + 1}
roles: [base, firewall, web, ${apps.map(appName).join(', ')}]
routes:
${apps.map((i) => `  - domain: ${appName(i)}.example.com\n    port: ${appPort(i)}\n    healthPath: /healthz`).join('\n')}
`;
}

const ROUTER_HOST_YAML = `address: 100.64.0.2
roles: [base, firewall, router]
`;

const ROUTER_ROLE = `description: The public entry; one site per route the app hosts declare.
vars:
  acmeEmail: ops@example.com
resources:
  - kind: caddy
    name: Caddyfile
    template: Caddyfile.hbs
  - kind: caddy
    name: routes
    template: routes.caddy.hbs
`;

const ROUTES_TEMPLATE = `# Managed by edge-reconciler: one site per route that the app hosts declare.
{{#each inventory.routes}}
{{domain}} {
	reverse_proxy{{#each upstreams}} {{address}}:{{port}}{{/each}} {
		lb_policy first
{{#if healthPath}}
		health_uri {{healthPath}}
{{/if}}
	}
}
{{/each}}
`;

function fleetFirewallRole(): string {
  const rules = Array.from({ length: APP_POOL }, (_, k) => `      - action: allow
        interface: tailscale0
        port: ${appPort(k + 1)}
        proto: tcp
        from: 100.64.0.0/10`);
  return `description: Deny by default; management over Tailscale; the app pool's ports open to the mesh only.
resources:
  - kind: ufw
    name: base
    defaults:
      incoming: deny
      outgoing: allow
      routed: deny
    rules:
      - action: limit
        interface: tailscale0
        port: 22
        proto: tcp
${rules.join('\n')}
      - action: allow
        port: 443
        proto: tcp
`;
}

/** Writes the fleet repo with `hosts` app hosts and the router into `dir`, committed on branch `main`. */
export async function generateFleetRepo(dir: string, hosts: number): Promise<void> {
  const files = new Map<string, string>([
    ['edge.yaml', EDGE_YAML],
    ['roles/base/role.yaml', BASE_ROLE],
    ['roles/base/templates/journald.conf.hbs', JOURNALD_TEMPLATE],
    ['roles/base/templates/logrotate-apps.hbs', LOGROTATE_TEMPLATE],
    ['roles/base/templates/edge-dirs.conf.hbs', TMPFILES_TEMPLATE],
    ['roles/web/role.yaml', WEB_ROLE],
    ['roles/web/templates/Caddyfile.hbs', CADDYFILE_TEMPLATE],
    ['roles/router/role.yaml', ROUTER_ROLE],
    ['roles/router/templates/Caddyfile.hbs', CADDYFILE_TEMPLATE],
    ['roles/router/templates/routes.caddy.hbs', ROUTES_TEMPLATE],
    ['roles/firewall/role.yaml', fleetFirewallRole()],
    [`hosts/${ROUTER_HOST}.yaml`, ROUTER_HOST_YAML],
  ]);
  for (let i = 1; i <= APP_POOL; i++) {
    files.set(`roles/${appName(i)}/role.yaml`, appRole(i));
    files.set(`roles/${appName(i)}/templates/app.env.hbs`, appEnvTemplate(i));
    files.set(`roles/${appName(i)}/templates/app.service.hbs`, appUnitTemplate(i));
    files.set(`roles/${appName(i)}/templates/site.caddy.hbs`, appSiteTemplate(i));
  }
  for (let h = 1; h <= hosts; h++) files.set(`hosts/${fleetHostName(h)}.yaml`, appHostYaml(h));
  for (const [path, text] of files) {
    const target = join(dir, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, text);
  }
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, '-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args], { stdio: 'ignore' });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', `fleet workload: ${hosts} hosts`);
  // Packed, as a clone is, without deleting the loose copies (generate.ts).
  git('config', 'gc.auto', '0');
  git('repack', '-a', '-q');
}

/** The fleet's secrets dir (every pool app's token), for any of its hosts. */
export async function writeFleetSecrets(dir: string): Promise<void> {
  await writeWorkloadSecrets(dir, APP_POOL);
}
