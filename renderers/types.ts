/**
 * The contract every resource kind implements. A renderer turns one declared resource into the exact files a host
 * must hold (pure: no filesystem writes, no processes), and validates a host's staged files of its kind with the
 * real tools (never on the live host).
 */
import type { Guards, HostSpec, ResourceDecl, ResourceKind, SourceRef } from '../reconciler/model.js';
import type { Problem } from '../reconciler/errors.js';
import type { AppBuild } from '../reconciler/host/app-build.js';

export type { AppBuild };

/** What a systemd-unit file asks of activation. */
export interface UnitIntent {
  /** The unit this file configures: `lod.service` for the unit file and for its drop-ins. */
  unit: string;
  /** True for a drop-in (`lod.service.d/10-limits.conf`). */
  dropIn: boolean;
  enable: boolean;
  start: boolean;
  /** Absolute paths from `EnvironmentFile=` lines: a change to one restarts the unit. */
  environmentFiles: string[];
  /** Further managed paths whose change restarts the unit. */
  restartOn: string[];
}

/** A firewall rule, as data. */
export interface UfwRule {
  action: 'allow' | 'deny' | 'reject' | 'limit';
  direction: 'in' | 'out';
  /** Interface name, e.g. `tailscale0`; absent means any interface. */
  interface?: string;
  /** Port or range (`8000:8010`); absent means every port. */
  port?: string;
  proto?: 'tcp' | 'udp';
  /** Source address or CIDR; absent means anywhere. */
  from?: string;
  to?: string;
  comment?: string;
  source: SourceRef;
}

/** Default policies of UFW. */
export interface UfwDefaults {
  incoming: 'allow' | 'deny' | 'reject';
  outgoing: 'allow' | 'deny' | 'reject';
  routed: 'allow' | 'deny' | 'reject';
}

/** The firewall part of one ufw resource. */
export interface UfwRuleSet {
  defaults?: UfwDefaults;
  rules: UfwRule[];
}

/** What a generic file asks of activation when it changes. */
export interface OnChange {
  restart: string[];
  reload: string[];
  /** One command (argv) to run after the file is in place. */
  run?: string[];
}

/** What an app resource asks of the prepare stage: where the code comes from and how it becomes a release. */
export interface AppIntent {
  /** The app's name: its dir is /srv/apps/<name>. */
  name: string;
  /** The repo as declared (a URL or absolute path); the host config's apps.insteadOf may map it. */
  repo: string;
  /** Exactly one of rev (a full commit SHA), tag, follow (a branch). */
  rev?: string;
  tag?: string;
  follow?: string;
  /** The user the app builds and runs as. */
  user: string;
  build?: AppBuild;
  /** Dirs under /srv/apps/<name>/shared, symlinked into each release. */
  shared: string[];
  /** Releases kept on the host (never the live one, nor the newest good one before it). */
  keep: number;
  /** Units restarted when the live release changes (none on a standby). */
  units: string[];
}

/** One file a host must hold, with everything apply and activation need to know about it. */
export interface RenderedFile {
  /** Absolute, normalized target path on the host (`/etc/caddy/Caddyfile`). */
  path: string;
  content: string;
  mode: number;
  owner: string;
  group: string;
  kind: ResourceKind;
  /** `role/kind/name`: unique per host. */
  resource: string;
  /** The resource declaration in its role.yaml. */
  source: SourceRef;
  /** The repo-relative template it was rendered from, when any. */
  template?: string;
  /** Holds secret values: never printed; diffs show keys only. */
  sensitive: boolean;
  /** Names of the secrets used (rotation restarts what uses them). */
  secrets: string[];
  /** Take over the target even if it exists unmanaged (backed up first). */
  adopt: boolean;
  unit?: UnitIntent;
  ufw?: UfwRuleSet;
  /** `file` kind: argv of a validate command; `%s` is replaced by the staged file's path. */
  validateCommand?: string[];
  onChange?: OnChange;
  /** A symlink, not a file: `content` is its target (an app's `current` → `releases/<sha>`). */
  link?: boolean;
  /** `app` kind: the release behind the `current` link; prepare resolves it and sets `content`. */
  app?: AppIntent;
}

/** The view of a host that templates and renderers see. */
export interface HostView {
  name: string;
  address: string;
  standby: boolean;
  roles: string[];
  vars: Record<string, unknown>;
}

/** A domain the router serves, gathered from every host's declared routes. */
export interface RouteView {
  domain: string;
  healthPath?: string;
  /** Active hosts first, standbys after (Caddy's `lb_policy first` then fails over to them). */
  upstreams: { host: string; address: string; port: number; standby: boolean }[];
}

/** The data a template sees; identical for every resource of one host (deterministic output). */
export interface TemplateData {
  host: HostView;
  /** Role defaults overridden by host vars. */
  vars: Record<string, unknown>;
  inventory: { hosts: HostView[]; routes: RouteView[] };
}

/** Everything a renderer may use; no I/O. */
export interface RenderInput {
  resource: ResourceDecl;
  host: HostSpec;
  data: TemplateData;
  engine: Templates;
}

/** The result of rendering one resource's template. */
export interface RenderedText {
  text: string;
  /** Repo-relative template file, or the role.yaml for inline content. */
  file: string;
  /** Secret names used, sorted. */
  secrets: string[];
}

/** What a renderer asks of the template engine (`TemplateEngine` in template.ts is the one implementation). */
export interface Templates {
  /** Renders the resource's template with `data`; throws RenderProblems naming the file and line. */
  render(resource: ResourceDecl, data: TemplateData, options: { allowSecrets: boolean }): RenderedText;
}

/** Everything a validator may use: the staged tree and the repo's guard rails. */
export interface ValidateInput {
  /** Every file of this kind rendered for the host. */
  files: RenderedFile[];
  /** Every file rendered for the host (validators that resolve imports need the others). */
  allFiles: RenderedFile[];
  /** A temp directory that mirrors the host (`<stagingDir>/etc/systemd/system/x.service`), for kinds that read it (`readsStaging`). */
  stagingDir: string;
  guards: Guards;
  externalExecPrefixes: string[];
  /** Aborts long-running validators when the run is cancelled. */
  signal?: AbortSignal;
  /** The repo's templates by repo-relative path: validators map a rendered line back to its template line. */
  templates?: ReadonlyMap<string, string>;
  /** How long one repo-supplied command (a file's `validate`) may run; its kind's default when absent. */
  commandTimeoutMs?: number;
  /**
   * Takes work that may wait until the run ends (removing a validator's temp tree); without it, the validator does it
   * before it returns.
   */
  defer?: (cleanup: () => Promise<void>) => void;
}

/** A resource kind. */
export interface Renderer {
  kind: ResourceKind;
  /** JSON Schema of one resource entry in role.yaml, `kind` and `name` included. */
  schema: Record<string, unknown>;
  /** Renders one resource into files. Throws RenderProblems for bad input. */
  render(input: RenderInput): RenderedFile[];
  /** Checks a host's staged files of this kind; returns every problem found. */
  validate(input: ValidateInput): Promise<Problem[]>;
  /**
   * What a passing verdict depends on, for the verdict cache: `file` when the validator judges each file alone (only
   * files that never passed are validated again), `kind` when it reads the files of its own kind together (hosts with
   * the same such files share it), `host` (the default, for a kind that does not say) when it may read any file of
   * the host (caddy follows imports).
   */
  verdictScope?: 'file' | 'kind' | 'host';
  /**
   * What of a file's content the validator's verdict depends on (default: all of it): files that differ only where
   * the tool cannot see, such as comments, share a verdict.
   */
  verdictText?(content: string): string;
  /**
   * The validator reads this kind's files from the staged tree (`stagingDir`); the files of other kinds are never
   * written there (env files hold secrets, and a cold host has thousands of files).
   */
  readsStaging?: boolean;
}

/** Thrown by a renderer: the problems of one resource. */
export class RenderProblems extends Error {
  constructor(readonly problems: Problem[]) {
    super(problems.map((p) => p.message).join('; '));
    this.name = 'RenderProblems';
  }
}
