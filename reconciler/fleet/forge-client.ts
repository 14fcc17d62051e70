/**
 * The forge's API through @octokit/rest (with its retry and throttling plugins): commit statuses on GitHub
 * (github.com, or Enterprise through `baseUrl`) and Gitea (the same statuses API under `/api/v1`), and GitHub
 * Deployments. Only this file speaks to the forge; callers never see a token.
 */
import { Octokit } from '@octokit/rest';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import type { Logger } from '../run-context.js';
import type { HostReport } from './waves.js';

/** A commit status's state, as GitHub and Gitea name it. */
export type CommitState = 'pending' | 'success' | 'failure' | 'error';

/** A GitHub deployment status's state (the ones the agent uses). */
export type DeploymentState = 'in_progress' | 'success' | 'failure' | 'error';

/** Where the forge is and how to reach it (host config `forge`, token read from its file). */
export interface ForgeSettings {
  kind: 'github' | 'gitea';
  /** The API root: `https://api.github.com`, `https://ghe.example.com/api/v3`, `https://gitea.example.com/api/v1`. */
  apiUrl: string;
  owner: string;
  repo: string;
  token: string;
}

/** The context of a host's statuses. */
export function statusContext(host: string): string {
  return `edge-reconciler/${host}`;
}

/** How long one call to the forge may take before it counts as failed. */
export const FORGE_TIMEOUT_MS = 10_000;

const ForgeOctokit = Octokit.plugin(retry, throttling);

/** The calls the agent makes to a forge. */
export class ForgeClient {
  private readonly octokit: InstanceType<typeof ForgeOctokit>;

  constructor(
    readonly settings: ForgeSettings,
    log: Logger,
    { retries = 2 }: { retries?: number } = {},
  ) {
    this.octokit = new ForgeOctokit({
      auth: settings.token,
      baseUrl: settings.apiUrl,
      userAgent: 'edge-reconciler',
      // Each call carries its own deadline (an AbortSignal); the retry plugin retries server errors within it.
      request: { retries },
      // The plugins' own logging would print request options; the agent logs failures itself.
      log: { debug() {}, info() {}, warn() {}, error() {} },
      throttle: {
        onRateLimit: (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) => {
          log.warn({ forge: settings.kind, retryAfter }, `forge rate limit reached: ${retryCount < 1 ? `retrying after ${retryAfter} s` : 'giving up this call'}`);
          return retryCount < 1;
        },
        onSecondaryRateLimit: (retryAfter: number) => {
          log.warn({ forge: settings.kind, retryAfter }, 'forge secondary rate limit reached: giving up this call');
          return false;
        },
      },
    });
  }

  /** Posts a commit status (`POST /repos/{owner}/{repo}/statuses/{sha}`). */
  async postStatus(sha: string, status: { state: CommitState; context: string; description: string; targetUrl?: string }): Promise<void> {
    await this.octokit.rest.repos.createCommitStatus({
      owner: this.settings.owner,
      repo: this.settings.repo,
      sha,
      state: status.state,
      context: status.context,
      description: status.description,
      ...(status.targetUrl ? { target_url: status.targetUrl } : {}),
      request: { signal: AbortSignal.timeout(FORGE_TIMEOUT_MS) },
    });
  }

  /**
   * The newest status of each of `hosts` on `sha` (`GET /repos/{owner}/{repo}/commits/{ref}/status`, the combined
   * status, which holds the latest status per context). Throws when the forge cannot be read.
   */
  async hostReports(sha: string, hosts: readonly string[]): Promise<Map<string, HostReport>> {
    const response = await this.octokit.rest.repos.getCombinedStatusForRef({
      owner: this.settings.owner,
      repo: this.settings.repo,
      ref: sha,
      per_page: 100,
      request: { retries: 0, signal: AbortSignal.timeout(FORGE_TIMEOUT_MS) },
    });
    const byContext = new Map<string, { state: string; description?: string | null }>();
    for (const status of response.data.statuses ?? []) {
      // Gitea names a status's state `status` (its combined status and its create call say `state`).
      const state = status.state ?? (status as { status?: string }).status ?? 'pending';
      if (!byContext.has(status.context)) byContext.set(status.context, { state, description: status.description });
    }
    return new Map(
      hosts.map((host) => {
        const status = byContext.get(statusContext(host));
        if (!status) return [host, { state: 'pending', detail: 'no status yet' }] as const;
        const state = status.state === 'success' ? 'success' : status.state === 'failure' ? 'failure' : 'pending';
        return [host, { state, detail: status.description ?? status.state }] as const;
      }),
    );
  }

  /** Creates a GitHub deployment of `sha` to the host's environment; returns its id. */
  async createDeployment(sha: string, environment: string, description: string): Promise<number> {
    const response = await this.octokit.rest.repos.createDeployment({
      owner: this.settings.owner,
      repo: this.settings.repo,
      ref: sha,
      environment,
      description,
      // Deploying a commit, not merging branches, and the statuses are ours to post: no checks before it.
      auto_merge: false,
      required_contexts: [],
      transient_environment: false,
      production_environment: true,
      request: { signal: AbortSignal.timeout(FORGE_TIMEOUT_MS) },
    });
    const id = (response.data as { id?: unknown }).id;
    if (typeof id !== 'number') throw new Error(`the forge answered ${response.status} without a deployment id`);
    return id;
  }

  /** Posts a deployment status (`POST /repos/{owner}/{repo}/deployments/{id}/statuses`). */
  async postDeploymentStatus(id: number, state: DeploymentState, description: string, logUrl?: string): Promise<void> {
    await this.octokit.rest.repos.createDeploymentStatus({
      owner: this.settings.owner,
      repo: this.settings.repo,
      deployment_id: id,
      state,
      description,
      auto_inactive: true,
      ...(logUrl ? { log_url: logUrl } : {}),
      request: { signal: AbortSignal.timeout(FORGE_TIMEOUT_MS) },
    });
  }
}
