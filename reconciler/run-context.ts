/**
 * The two values every stage receives: the run's fixed context and the state the stages build up.
 */
import type { Stage } from './errors.js';
import type { CommandRunner, Host } from './host/host.js';
import type { HealthReport } from './host/health.js';
import type { InventoryEntry } from './state/inventory.js';
import type { DesiredState, Plan } from './model.js';
import type { PathPolicy } from './host/path-policy.js';
import type { TreeFiles, TreeLimits } from './source/git-tree.js';
import type { AppSourceConfig } from './source/app-source.js';
import type { Redactor } from './secrets/redact.js';
import type { MaintenanceConfig } from './config/schedule.js';
import type { AppRelease, GenerationMeta, StateStore } from './state/state-store.js';
import type { RunResult, WaveStatus } from './state/status.js';
import type { Transaction } from './state/transaction.js';
import type { SecretSource } from '../renderers/template.js';
import type { RenderedFile } from '../renderers/types.js';
import type { Caches } from './cache/caches.js';

/** A structured logger (pino's shape). */
export interface Logger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
  /** Stage detail (syslog debug); optional so a plain `{ info, warn, error }` still is a logger. */
  debug?(object: object, message?: string): void;
  /** A run that changed the host (syslog notice). */
  notice?(object: object, message?: string): void;
}

/** The syslog levels the agent writes at (docs/logs.md): err, warning, notice, info, debug. */
export type LogLevel = 'error' | 'warn' | 'notice' | 'info' | 'debug';

/** Writes one line at `level`; a logger without `debug` drops stage detail, one without `notice` says it at info. */
export function logAt(log: Logger, level: LogLevel, object: object, message: string): void {
  if (level === 'debug') log.debug?.(object, message);
  else if (level === 'notice') (log.notice ? log.notice.bind(log) : log.info.bind(log))(object, message);
  else log[level](object, message);
}

/**
 * The level of the line that ends a run: failures and rollbacks are errors, refusals, drift and crash recoveries
 * warnings, a run that changed the host (or was held by the operator's choice) a notice, a no-op info.
 */
export function runLogLevel(result: RunResult): LogLevel {
  switch (result) {
    case 'failed':
    case 'invalid':
    case 'rolled-back':
      return 'error';
    case 'refused':
    case 'drifted':
    case 'recovered':
    case 'halted':
      return 'warn';
    case 'applied':
    case 'suspended':
    case 'pinned':
    case 'outside-window':
    case 'waiting':
      return 'notice';
    default:
      return 'info';
  }
}

/** A logger that drops everything. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** The git source of a host: what to fetch, how to authenticate, what to trust. */
export interface SourceConfig {
  repo: string;
  /** A branch, tag or commit; exclusive with tagPattern. */
  ref?: string;
  /** Follow the highest tag matching this glob (`prod-*`). */
  tagPattern?: string;
  /** The folder of the repo that holds the desired state (default: its root). */
  path?: string;
  auth?: { sshKeyFile?: string; knownHostsFile?: string; tokenFile?: string; tokenUser?: string };
  trust?: { requireSignatures: boolean; allowedSignersFile?: string; gpgHome?: string; allowRewinds: boolean };
  timeoutMs?: number;
  /** The caps on the tree read into memory (default DEFAULT_TREE_LIMITS). */
  limits?: TreeLimits;
}

/** What a run is asked to do; fixed for its duration. */
export interface RunContext {
  hostName: string;
  host: Host;
  secrets: SecretSource;
  redact: Redactor;
  policy: PathPolicy;
  signal?: AbortSignal;
  log: Logger;
  /** Everything below is only needed by runs that apply. */
  store?: StateStore;
  runner?: CommandRunner;
  /** Where the repo comes from and what is trusted (fetch stage). */
  source?: SourceConfig;
  deadmanSeconds?: number;
  hookTimeoutMs?: number;
  /** How many generations to keep (default 10). */
  keepGenerations?: number;
  /** When applying is allowed (the host config's maintenance windows); none = always. */
  maintenance?: MaintenanceConfig;
  /**
   * The content-addressed caches of the plan stages (parsed YAML, renders, validator verdicts), opened on first use;
   * absent: every run does the full work. Usually `<stateDir>/cache` (see reconciler/cache/).
   */
  cacheDir?: string;
  /** Told the revision as soon as fetch resolved it (the daemon absorbs webhooks announcing that commit). */
  onRevision?: (revision: string) => void;
  /** How app repos are reached (the host config's `apps`: URL rewrites and credentials). */
  apps?: AppSourceConfig;
  /** Holds a new commit until the hosts of the earlier waves run it (serve); absent: waves are not honoured. */
  waves?: WaveGate;
  /** Told when applying a revision begins, after every gate (the forge's `pending` status). */
  onApplying?: (revision: string) => void;
}

/** What the wave gate says about a commit: go, or hold it (waiting, halted), with the host's wave for the status. */
export interface WaveVerdict {
  hold?: { result: 'waiting' | 'halted'; code: 'WAVE_WAITING' | 'WAVE_HALTED' | 'WAVE_TIMEOUT'; reason: string };
  wave: WaveStatus;
}

/** The wave gate the agent gives a run (see fleet/wave-gate.ts). */
export interface WaveGate {
  check(revision: string, desired: DesiredState): Promise<WaveVerdict>;
}


/** What the stages have produced so far. */
export interface RunState {
  /** The exported tree of the revision (set by fetch, or given for `plan`/`check`). */
  tree?: string;
  /** Asked by fetch once the revision is known: true when the live generation already is that revision, with the
   * same inputs, untouched on the host (then nothing is exported, rendered or validated). */
  reuseLive?: (revision: string) => Promise<boolean>;
  /** Fetch skipped the export because `reuseLive` said so. */
  reused?: boolean;
  /** The tree in memory, straight from git (load reads it instead of `tree`). */
  treeFiles?: TreeFiles;
  /** Writes the tree into `tree` for what needs it on disk (hooks). */
  materializeTree?: () => Promise<void>;
  revision?: string;
  desired?: DesiredState;
  files?: RenderedFile[];
  /** The inventory of the generation that is live now (empty on a fresh host). */
  previous: InventoryEntry[];
  previousGeneration?: GenerationMeta;
  plan?: Plan;
  /** Set by a manual rollback: the generation whose files are being restored (no git, no desired state). */
  restoring?: GenerationMeta;
  generation?: GenerationMeta;
  transaction?: Transaction;
  health?: HealthReport;
  /** What prepare did or will do besides files (the plan shows them): releases built or reused, users created. */
  notes?: string[];
  /** The app releases prepare made ready, one per app resource (recorded in the generation). */
  releases?: AppRelease[];
  /** Every activation command, in order (recorded under --dry-activate). */
  commands: string[][];
  /** The caches opened by the first plan stage that used them (ctx.cacheDir), saved once the plan is made. */
  caches?: Caches;
  /** Milliseconds per stage that ran. */
  durations: Partial<Record<Stage, number>>;
  /**
   * Work the stages left for the end of the run (removing the validators' temp trees), run by its owner once the
   * run is over. Absent: the stages do it at once (`plan`, which runs the stages itself).
   */
  cleanups?: (() => Promise<void>)[];
}

/** One named stage. */
export interface StageStep {
  stage: Stage;
  run(ctx: RunContext, state: RunState): Promise<void>;
}

/** A value a stage needs from an earlier one; its absence is a bug in the stage order. */
export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`pipeline bug: ${what} is missing`);
  return value;
}
