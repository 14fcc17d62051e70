/**
 * The desired-state model: what the load stage builds from `edge.yaml`, `hosts/*.yaml` and `roles/*\/role.yaml`,
 * and what renderers, validators and the planner read. Plain data, no behaviour.
 */

/** The resource kinds; one renderer folder each under `renderers/`. */
export type ResourceKind = 'app' | 'caddy' | 'env-file' | 'file' | 'systemd-unit' | 'ufw';

/** Where something was declared: a repo-relative file, the line, and the JSON pointer inside it. */
export interface SourceRef {
  file: string;
  line?: number;
  path?: string;
}

/** Guard rails that the repo may lift explicitly in `edge.yaml` (`guards:`). */
export interface Guards {
  /** Allow a rule set that would cut SSH/management over the Tailscale interface. */
  allowManagementCut: boolean;
  /** Allow SSH (22/tcp) from anywhere on a non-Tailscale interface. */
  allowSshFromAnywhere: boolean;
  /** The interface that carries management traffic. */
  managementInterface: string;
  /**
   * Allow a firewall change that would refuse an SSH connection established on the live host now, or that allows
   * SSH only over a management interface the host does not have (default false).
   */
  allowHostLockout?: boolean;
}

/** `edge.yaml`: the repo-wide settings. */
export interface EdgeConfig {
  version: 1;
  guards: Guards;
  /** Executables that are deployed outside the repo (app releases): their absence on a CI machine is no error. */
  externalExecPrefixes: string[];
  health: { deadlineSeconds: number; intervalSeconds: number };
  /** Waves: host groups that converge one after the other. */
  waves: string[][];
  source: SourceRef;
}

/** A route an app host offers to the router: traffic for `domain` goes to this host's `port`. */
export interface RouteSpec {
  domain: string;
  port: number;
  /** Path the router probes on the upstream. */
  healthPath?: string;
  source: SourceRef;
}

/** `hosts/<name>.yaml`. */
export interface HostSpec {
  name: string;
  /** The host's Tailscale address: what the router and peers dial. */
  address: string;
  roles: string[];
  standby: boolean;
  vars: Record<string, unknown>;
  routes: RouteSpec[];
  /** Checks for this host besides its roles' ones. */
  health: HealthCheckSpec[];
  source: SourceRef;
}

/** One resource of a role, as declared; `spec` is checked by the kind's JSON schema. */
export interface ResourceDecl {
  kind: ResourceKind;
  name: string;
  role: string;
  spec: Record<string, unknown>;
  source: SourceRef;
}

/** A health check as declared by a role or host. */
export interface HealthCheckSpec {
  name: string;
  type: 'unit' | 'http' | 'tcp' | 'command';
  spec: Record<string, unknown>;
  source: SourceRef;
}

/** Hook executables a role declares, by phase. */
export type HookPhase = 'pre-apply' | 'post-apply' | 'on-failure' | 'on-rollback';

/** One hook of a role: its script, relative to the role folder, and what its sandbox lets it have. */
export interface HookSpec {
  script: string;
  /** The host's network namespace (`network: true` in role.yaml); otherwise none. */
  network: boolean;
}

/** `roles/<name>/role.yaml`. */
export interface RoleSpec {
  name: string;
  /** Default variables; host `vars` override them. */
  vars: Record<string, unknown>;
  resources: ResourceDecl[];
  health: HealthCheckSpec[];
  hooks: Partial<Record<HookPhase, HookSpec>>;
  source: SourceRef;
}

/** Everything one revision of the desired-state repo says, parsed and schema-checked. */
export interface DesiredState {
  /** Directory holding the exported tree of the revision. */
  repoDir: string;
  edge: EdgeConfig;
  hosts: Map<string, HostSpec>;
  roles: Map<string, RoleSpec>;
  /** Template files by repo-relative path (`roles/<role>/templates/...`). */
  templates: Map<string, string>;
}

/** What happens to one managed path. */
export type FileAction = 'create' | 'update' | 'delete' | 'unchanged';

/** Why an existing file is updated. */
export type UpdateReason = 'content' | 'mode' | 'owner' | 'type';

/** One path of the plan. */
export interface FileChange {
  path: string;
  action: FileAction;
  kind: ResourceKind;
  resource: string;
  sensitive: boolean;
  reasons: UpdateReason[];
  /** A unified diff, or for sensitive files one masked line per changed key; empty when unchanged. */
  diff: string;
}

/** The activation a plan implies, in the order activation runs it. */
export interface Activation {
  daemonReload: boolean;
  stop: string[];
  disable: string[];
  enable: string[];
  start: string[];
  restart: string[];
  reload: string[];
  caddyReload: boolean;
  firewall: boolean;
  /** Commands from `onChange.run` of changed files. */
  run: string[][];
  /** Why each unit in start/restart/stop is there: the managed paths that changed. */
  because: Record<string, string[]>;
}

/** The plan of one host. */
export interface Plan {
  host: string;
  changes: FileChange[];
  activation: Activation;
  /** True when any file changes (then activation has work too, or the change is content-only). */
  changed: boolean;
  /** What else applying does besides files and units: app releases built or reused, app users created. */
  notes?: string[];
}
