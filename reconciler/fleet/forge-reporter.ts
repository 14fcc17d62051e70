/**
 * What the agent tells the forge about each commit it attempts, through the outbox (never blocking a run): a
 * commit status with the context `edge-reconciler/<host>`, and optionally (GitHub) a deployment per host as its
 * environment, so the forge's environments page shows what is live where.
 */
import type { Logger } from '../run-context.js';
import { statusContext, type CommitState, type DeploymentState, type ForgeClient } from './forge-client.js';
import { applyingStatus, statusOfOutcome, type CommitStatus, type OutcomeSummary } from './outcome-status.js';
import { StatusOutbox, type OutboxItem } from './status-outbox.js';

/** Options of the reporter. */
export interface ForgeReporterOptions {
  client: ForgeClient;
  host: string;
  log: Logger;
  redact: (text: string) => string;
  /** `target_url` of the statuses: the fleet page. */
  fleetUrl?: string;
  /** Also create GitHub deployments (environment = the host name). */
  deployments: boolean;
  onAttempt?: (ok: boolean) => void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

interface ForgeMessage extends OutboxItem {
  status: CommitStatus;
  /** Starts a deployment (applying) or ends one (a final state); none for a held commit. */
  deployment?: 'start' | DeploymentState;
}

const DEPLOYMENT_STATE: Partial<Record<CommitState, DeploymentState>> = { success: 'success', failure: 'failure', error: 'error' };

/** Posts the outcomes of this host's runs to the forge. */
export class ForgeReporter {
  private readonly outbox: StatusOutbox<ForgeMessage>;
  private readonly deploymentIds = new Map<string, number>();

  constructor(private readonly options: ForgeReporterOptions) {
    this.outbox = new StatusOutbox<ForgeMessage>({
      send: (message) => this.send(message),
      log: options.log,
      ...(options.onAttempt ? { onAttempt: options.onAttempt } : {}),
      ...(options.initialBackoffMs !== undefined ? { initialBackoffMs: options.initialBackoffMs } : {}),
      ...(options.maxBackoffMs !== undefined ? { maxBackoffMs: options.maxBackoffMs } : {}),
    });
  }

  /** Applying `sha` begins: `pending`. */
  applying(sha: string): void {
    this.queue(applyingStatus(sha), 'start');
  }

  /** A run ended: its status, when it says something about a commit. */
  finished(outcome: OutcomeSummary): void {
    const status = statusOfOutcome(outcome, this.options.redact);
    if (!status) return;
    this.queue(status, DEPLOYMENT_STATE[status.state]);
  }

  /** Commits with unsent statuses. */
  get unsent(): number {
    return this.outbox.size;
  }

  /** Gives the outbox a last chance to deliver, then stops. */
  close(timeoutMs?: number): Promise<void> {
    return this.outbox.close(timeoutMs);
  }

  private queue(status: CommitStatus, deployment?: ForgeMessage['deployment']): void {
    const wantsDeployment = this.options.deployments && this.options.client.settings.kind === 'github' && deployment !== undefined;
    this.outbox.push({
      sha: status.sha,
      fingerprint: `${status.state} ${status.description}`,
      status,
      ...(wantsDeployment ? { deployment } : {}),
    });
  }

  private async send(message: ForgeMessage): Promise<void> {
    const { client, host, fleetUrl } = this.options;
    const { status } = message;
    await client.postStatus(status.sha, {
      state: status.state,
      context: statusContext(host),
      description: status.description,
      ...(fleetUrl ? { targetUrl: fleetUrl } : {}),
    });
    if (!message.deployment) return;
    let id = this.deploymentIds.get(status.sha);
    if (id === undefined) {
      id = await client.createDeployment(status.sha, host, `edge-reconciler on ${host}`);
      this.deploymentIds.set(status.sha, id);
      if (this.deploymentIds.size > 32) this.deploymentIds.delete(this.deploymentIds.keys().next().value as string);
    }
    await client.postDeploymentStatus(id, message.deployment === 'start' ? 'in_progress' : message.deployment, status.description, fleetUrl);
  }
}
