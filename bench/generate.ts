/**
 * The benchmark's workload: a desired-state repo with one app host, `bench-host`, running N apps the way a team
 * splits them: one role per app (its env file, unit and Caddy site), a base role, a web role with the main
 * Caddyfile, and a firewall role whose one ufw resource opens every app port on the Tailscale interface.
 * Everything is deterministic: the same N always writes the same bytes.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** The one host of the workload. */
export const BENCH_HOST = 'bench-host';

/** The files one app adds to the rendered host: env file, unit, Caddy site. */
export const FILES_PER_APP = 3;

/** The files the host holds besides the apps': journald, logrotate, tmpfiles, main Caddyfile, ufw rules. */
export const SHARED_FILES = 5;

/** The port app `i` listens on (127.0.0.1 only; Caddy proxies to it). */
export function appPort(i: number): number {
  return 10_000 + i;
}

/** The name of app `i` (1-based): `app-<i>`, also its role, unit, env file and site name. */
export function appName(i: number): string {
  return `app-${i}`;
}

/** The secret app `i`'s env file reads. */
export function appSecretName(i: number): string {
  return `APP_${i}_TOKEN`;
}

/** Writes the desired-state repo of a host with `apps` apps into `dir` (created when missing). */
export async function generateWorkload(dir: string, apps: number): Promise<void> {
  if (!Number.isInteger(apps) || apps < 1) throw new Error(`apps must be a positive integer, got ${apps}`);
  const files = new Map<string, string>([
    ['edge.yaml', EDGE_YAML],
    [`hosts/${BENCH_HOST}.yaml`, hostYaml(apps)],
    ['roles/base/role.yaml', BASE_ROLE],
    ['roles/base/templates/journald.conf.hbs', JOURNALD_TEMPLATE],
    ['roles/base/templates/logrotate-apps.hbs', LOGROTATE_TEMPLATE],
    ['roles/base/templates/edge-dirs.conf.hbs', TMPFILES_TEMPLATE],
    ['roles/web/role.yaml', WEB_ROLE],
    ['roles/web/templates/Caddyfile.hbs', CADDYFILE_TEMPLATE],
    ['roles/firewall/role.yaml', firewallRole(apps)],
  ]);
  for (let i = 1; i <= apps; i++) {
    const role = `roles/${appName(i)}`;
    files.set(`${role}/role.yaml`, appRole(i));
    files.set(`${role}/templates/app.env.hbs`, appEnvTemplate(i));
    files.set(`${role}/templates/app.service.hbs`, appUnitTemplate(i));
    files.set(`${role}/templates/site.caddy.hbs`, appSiteTemplate(i));
  }
  for (const [path, text] of files) {
    const target = join(dir, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, text);
  }
}

/**
 * The workload committed as the first commit of a git repo on branch `main` in `dir`, as a developer would push it,
 * and packed, as a clone of it (the agent's mirror) is: thousands of loose objects would make every `git` read cost
 * ~10 times more than on a VM (ls-tree and cat-file of 4000 blobs: ~0.25 s CPU loose, ~0.03 s packed). The loose
 * copies stay (git reads the pack first) and automatic gc is off: deleting thousands of files just before a timed
 * run slows the file creations of that run in the kernel (ext4 skips recently freed inodes), which no VM pays.
 */
export async function generateWorkloadRepo(dir: string, apps: number): Promise<void> {
  await generateWorkload(dir, apps);
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, '-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args], { stdio: 'ignore' });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', `bench workload: ${apps} apps`);
  git('config', 'gc.auto', '0');
  git('repack', '-a', '-q');
}

/** Writes the host's secrets dir: one 0600 file per app token, values derived from the name (deterministic). */
export async function writeWorkloadSecrets(dir: string, apps: number): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  for (let i = 1; i <= apps; i++) {
    const name = appSecretName(i);
    const value = createHash('sha256').update(`edge-reconciler bench ${name}`).digest('hex');
    const path = join(dir, name);
    await writeFile(path, `${value}\n`, { mode: 0o600 });
    await chmod(path, 0o600);
  }
}

/**
 * A one-change commit: bumps app `i`'s release (`r1` → `r2` → ...), which changes one line of its env file, so the
 * plan updates that file and restarts that one unit. Returns the new release.
 */
export async function changeOneApp(repoDir: string, i: number): Promise<string> {
  const path = join(repoDir, 'roles', appName(i), 'role.yaml');
  const text = await readFile(path, 'utf8');
  const match = /^( {4}release: r)(\d+)$/m.exec(text);
  if (!match) throw new Error(`${path} has no "release: r<n>" line`);
  const release = `r${Number(match[2]) + 1}`;
  await writeFile(path, text.replace(match[0], `    release: ${release}`));
  return release;
}

/** A shared file of the workloads (also generate-fleet.ts). */
export const EDGE_YAML = `# yaml-language-server: $schema=./schema/edge.schema.json
# Benchmark workload (bench/generate.ts): one app host with many apps.
version: 1

guards:
  managementInterface: tailscale0

validate:
  externalExecPrefixes: [/srv/apps, /opt]

health:
  deadlineSeconds: 60
  intervalSeconds: 2
`;

function hostYaml(apps: number): string {
  const roles = ['base', 'firewall', 'web', ...Array.from({ length: apps }, (_, k) => appName(k + 1))];
  return `# yaml-language-server: $schema=../schema/host.schema.json
address: 100.64.0.50
roles:
${roles.map((role) => `  - ${role}`).join('\n')}
vars:
  logs:
    keepDays: 7
`;
}

/** A shared file of the workloads (also generate-fleet.ts). */
export const BASE_ROLE = `# yaml-language-server: $schema=../../schema/role.schema.json
description: "What every host has: bounded journald, rotated app logs, the app and backup directories."
vars:
  journal:
    maxUse: 500M
  logs:
    keepDays: 14
resources:
  - kind: file
    name: journald
    target: /etc/systemd/journald.conf.d/50-edge.conf
    template: journald.conf.hbs
    onChange:
      restart: [systemd-journald.service]
  - kind: file
    name: logrotate-apps
    target: /etc/logrotate.d/edge-apps
    template: logrotate-apps.hbs
    validate: [logrotate, --debug, --state, logrotate.status, "%s"]
  - kind: file
    name: directories
    target: /etc/tmpfiles.d/edge-dirs.conf
    template: edge-dirs.conf.hbs
    validate: [systemd-tmpfiles, --root=tmpfiles-root, --create, "%s"]
    onChange:
      run: [systemd-tmpfiles, --create, /etc/tmpfiles.d/edge-dirs.conf]
health:
  - name: journald
    type: unit
    unit: systemd-journald.service
`;

/** A shared file of the workloads (also generate-fleet.ts). */
export const JOURNALD_TEMPLATE = `# Managed by edge-reconciler (role base). Keep the journal bounded on small disks.
[Journal]
SystemMaxUse={{vars.journal.maxUse}}
`;

/** A shared file of the workloads (also generate-fleet.ts). */
export const LOGROTATE_TEMPLATE = `# Managed by edge-reconciler (role base): logs that apps write under /srv/apps/<app>/logs.
/srv/apps/*/logs/*.log {
    daily
    rotate {{vars.logs.keepDays}}
    missingok
    notifempty
    compress
    delaycompress
    copytruncate
}
`;

/** A shared file of the workloads (also generate-fleet.ts). */
export const TMPFILES_TEMPLATE = `# Managed by edge-reconciler (role base): created by systemd-tmpfiles --create.
d /srv/apps 0755 root root -
d /srv/backups 0750 root root -
`;

/** A shared file of the workloads (also generate-fleet.ts). */
export const WEB_ROLE = `# yaml-language-server: $schema=../../schema/role.schema.json
description: Caddy on the app host; every app role adds its own site file under /etc/caddy/sites.
vars:
  acmeEmail: ops@example.com
resources:
  - kind: caddy
    name: Caddyfile
    template: Caddyfile.hbs
health:
  - name: caddy
    type: unit
    unit: caddy.service
`;

/** A shared file of the workloads (also generate-fleet.ts). */
export const CADDYFILE_TEMPLATE = `# Managed by edge-reconciler (role web) on {{host.name}}.
{
	email {{vars.acmeEmail}}
	admin localhost:2019
}

import /etc/caddy/sites/*.caddy
`;

function firewallRole(apps: number): string {
  const appRules = Array.from({ length: apps }, (_, k) => {
    const i = k + 1;
    return `      - action: allow
        interface: tailscale0
        port: ${appPort(i)}
        proto: tcp
        from: 100.64.0.0/10
        comment: ${appName(i)} from the mesh`;
  });
  return `# yaml-language-server: $schema=../../schema/role.schema.json
description: Deny by default; management over Tailscale; every app port open to the mesh only.
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
        comment: ssh over tailscale only
${appRules.join('\n')}
`;
}

/** One app role's file (shared with the fleet workload, generate-fleet.ts). */
export function appRole(i: number): string {
  const name = appName(i);
  return `# yaml-language-server: $schema=../../schema/role.schema.json
description: ${name}, its env (the token comes from the host's secrets dir) and its Caddy site.
vars:
  app_${i}:
    port: ${appPort(i)}
    workers: 2
    release: r1
resources:
  - kind: env-file
    name: ${name}
    template: app.env.hbs
  - kind: systemd-unit
    name: ${name}.service
    template: app.service.hbs
  - kind: caddy
    name: ${name}
    template: site.caddy.hbs
health:
  - name: ${name}-unit
    type: unit
    unit: ${name}.service
  - name: ${name}-http
    type: http
    url: http://127.0.0.1:${appPort(i)}/healthz
    expectStatus: 200
`;
}

/** One app role's file (shared with the fleet workload, generate-fleet.ts). */
export function appEnvTemplate(i: number): string {
  return `# Managed by edge-reconciler (role ${appName(i)}). The token comes from the host's secrets dir.
APP_NAME=${appName(i)}
APP_PORT={{vars.app_${i}.port}}
APP_WORKERS={{vars.app_${i}.workers}}
APP_RELEASE={{vars.app_${i}.release}}
APP_TOKEN={{secret "${appSecretName(i)}"}}
`;
}

/** One app role's file (shared with the fleet workload, generate-fleet.ts). */
export function appUnitTemplate(i: number): string {
  const name = appName(i);
  return `# Managed by edge-reconciler (role ${name}).
[Unit]
Description=${name}
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
EnvironmentFile=/etc/edge-reconciler/env/${name}.env
WorkingDirectory=/srv/apps/${name}
ExecStart=/srv/apps/${name}/current/bin/server --listen 127.0.0.1:{{vars.app_${i}.port}}
Restart=on-failure
RestartSec=2
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`;
}

/** One app role's file (shared with the fleet workload, generate-fleet.ts). */
export function appSiteTemplate(i: number): string {
  return `# Managed by edge-reconciler (role ${appName(i)}).
${appName(i)}.example.com {
	encode zstd gzip
	reverse_proxy 127.0.0.1:{{vars.app_${i}.port}}
}
`;
}
