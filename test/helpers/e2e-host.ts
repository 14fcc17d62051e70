/**
 * An edge host for the e2e apply suites: a booted SystemdContainer prepared as a VM the agent runs on. The example
 * desired-state is committed into a working repo and pushed to a bare repo inside the container (as a forge
 * would hold it), the host's secrets are in /etc/edge-reconciler/secrets, and the example apps' git repos (lod and
 * model-gateway from examples/apps, see app-repos.ts) are in the container's forge, where the host config maps the
 * example's app URLs (`apps.insteadOf`): the agent builds and releases them itself. The agent runs inside as root
 * with root `/`: real systemctl, caddy and ufw.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { copyFile, cp, mkdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { PROJECT_IN_CONTAINER, SystemdContainer, type ExecResult } from './container.js';
import { EXAMPLE_SECRETS } from './cli.js';
import type { AppRepo, ExampleApp } from './app-repos.js';
import { APP_INSTEAD_OF_ARGS, APPS_HOST_CONFIG, createContainerAppRepos } from './e2e-apps.js';
import { commitEdit, git, revertLast } from './git-repo.js';
import { EXAMPLE_REPO, PROJECT_ROOT } from './paths.js';
import { waitUntil } from './wait.js';

/** The agent's paths inside the container, as on a VM. */
export const AGENT = {
  cli: `${PROJECT_IN_CONTAINER}/dist/reconciler/cli/main.js`,
  stateDir: '/var/lib/edge-reconciler',
  secretsDir: '/etc/edge-reconciler/secrets',
  /** The bare repo the agent pulls from (the forge, here inside the container). */
  repo: '/srv/forge/desired-state.git',
  ref: 'release',
} as const;

/**
 * The agent installed as its systemd service, as the .deb installs it on a VM, adapted to the project
 * bound read-only at /opt/edge-reconciler: the command is a wrapper script instead of a symlink to main.js.
 */
export const SERVICE = {
  unit: 'edge-reconciler.service',
  bin: '/usr/bin/edge-reconciler',
  config: '/etc/edge-reconciler/config.yaml',
  webhookSecretFile: '/etc/edge-reconciler/webhook-secret',
  listen: '127.0.0.1:9321',
} as const;

/** The host config keys the service tests set (docs/config.md); anything else keeps its default. */
export interface ServiceConfig {
  webhook?: { enabled: boolean };
  poll?: { enabled: boolean; intervalSeconds?: number; jitterSeconds?: number };
  drift?: { policy?: 'heal' | 'report'; watch?: boolean };
}

/** What `/status` answers: the status document plus the worker's state. */
export interface ServiceStatus extends StatusJson {
  lastApplied?: { revision: string; generation: number; at?: string };
  lastAttempted?: StatusJson['lastAttempted'] & { at?: string; durations?: Record<string, number> };
  history: { at: string; result: string; revision?: string; generation?: number; durations?: Record<string, number> }[];
  daemon?: Record<string, unknown>;
}

/** The working repo developers commit to; lives in the container's root so it goes with the container. */
const WORK_REPO = '/srv/work/desired-state';

/** Exit status of a process killed by SIGKILL, as a shell reports it. */
export const KILLED = 128 + 9;

/** What `apply --json` prints. */
export interface ApplyJson {
  result: string;
  revision: string;
  generation?: number;
  recovery?: { generation: number; outcome: string };
  changes: { path: string; action: string }[];
  commands: string[][];
  health?: { name: string; status: string; message: string }[];
  error?: { code: string; stage: string; message: string; problems?: { code: string; message: string }[] };
}

/** One run of the agent inside the container. */
export interface AgentRun extends ExecResult {
  /** The parsed `--json` output (undefined when the run printed none, e.g. it was killed). */
  json?: ApplyJson;
}

/** What `status --json` prints. */
export interface StatusJson {
  host: string;
  lastApplied?: { revision: string; generation: number };
  lastAttempted?: { revision?: string; result: string; code?: string; generation?: number; failedCheck?: { name: string } };
  badRevisions: { revision: string; reason: string }[];
}

/** What the lod fixture reports at /env. */
export interface LodEnv {
  LOD_PORT: string;
  LOD_WORKERS: string;
  LOD_HOST: string;
  pid: number;
}

/** Files under some paths: path → `mode owner:group sha256`, or `-> target` for a symlink. */
export type FileSnapshot = Map<string, string>;

/**
 * The base role validates its logrotate file with `logrotate --debug`, as a VM has it; the cached root lacks the
 * package (setup-root.sh does not include it), so the host's binary (the same Debian release) and the one library
 * minbase misses are copied into this boot's copy of the root.
 */
async function installLogrotate(box: SystemdContainer): Promise<void> {
  const { stdout } = await box.exec(['sh', '-c', 'command -v logrotate || true']);
  if (stdout.trim()) return;
  const binary = await realpath((await execa('sh', ['-c', 'command -v logrotate'])).stdout.trim());
  const popt = /libpopt\.so\.0 => (\S+)/.exec((await execa('ldd', [binary])).stdout)?.[1];
  if (!popt) throw new Error(`cannot find the libpopt that ${binary} links to`);
  await copyFile(binary, box.hostPath('/usr/sbin/logrotate'));
  await copyFile(await realpath(popt), box.hostPath(popt.replace(/^\/lib\//, '/usr/lib/')));
  await box.exec(['logrotate', '--version']);
}

/** A booted container ready for the agent. Always `shutdown()` in `after`. */
export class EdgeHost {
  private constructor(
    readonly box: SystemdContainer,
    /** The working repo on the host (inside the container's root folder). */
    readonly workRepo: string,
    /** The example apps' repos in the container's forge (tags v1, v2, v3, broken-build; main at v2). */
    readonly apps: Record<ExampleApp, AppRepo>,
  ) {}

  /**
   * Boots a fresh container, pushes the example repo to its forge, writes the secrets and creates the example
   * apps' repos (the agent builds and releases them). With `node: false` the container has no Node at all (the
   * apps are Python), and no secrets are written (the operator sets them with `edge-reconciler secrets set`).
   */
  static async boot(options: { node?: boolean } = {}): Promise<EdgeHost> {
    const withNode = options.node ?? true;
    const box = await SystemdContainer.boot({ node: withNode });
    try {
      const workRepo = box.hostPath(WORK_REPO);
      await mkdir(workRepo, { recursive: true });
      await cp(EXAMPLE_REPO, workRepo, { recursive: true });
      // The container is a fleet of one: lod-prod must not wait for wave 1's hosts, which do not exist here.
      const edgeYaml = (await readFile(join(workRepo, 'edge.yaml'), 'utf8')).replace(/\n# Standbys[^\n]*\nwaves:\n( {2}- .*\n)+/, '\n');
      if (/^waves:/m.test(edgeYaml)) throw new Error('the e2e host could not take the waves out of the example edge.yaml');
      await writeFile(join(workRepo, 'edge.yaml'), edgeYaml);
      await git(workRepo, 'init', '-q', '-b', AGENT.ref);
      await git(workRepo, 'add', '-A');
      await git(workRepo, 'commit', '-q', '-m', 'example desired state');
      await execa('git', ['init', '-q', '--bare', box.hostPath(AGENT.repo)]);
      const host = new EdgeHost(box, workRepo, await createContainerAppRepos(box));
      await host.push();
      if (withNode) {
        for (const [name, value] of Object.entries(EXAMPLE_SECRETS)) {
          await box.writeFile(`${AGENT.secretsDir}/${name}`, `${value}\n`, 0o600);
        }
        await box.exec(['chmod', '0700', AGENT.secretsDir]);
      }
      await installLogrotate(box);
      return host;
    } catch (error) {
      await box.shutdown();
      throw error;
    }
  }

  /** Runs the agent's CLI inside; a SIGKILLed run ends with exitCode {@link KILLED}. */
  async agent(args: string[], env: Record<string, string> = {}): Promise<AgentRun> {
    // Through sh: nsenter hides how its child died, sh reports a SIGKILL as 137.
    const result = await this.box.exec(['sh', '-c', '"$@"; exit $?', 'sh', 'node', AGENT.cli, ...args], {
      env,
      reject: false,
      timeoutMs: 240_000,
    });
    let json: ApplyJson | undefined;
    if (args.includes('--json') && result.stdout.trim().startsWith('{')) json = JSON.parse(result.stdout) as ApplyJson;
    return { ...result, json };
  }

  /** `apply` of the forge's release branch for `hostName`, as the agent runs on a VM. */
  apply(hostName = 'lod-prod', options: { args?: string[]; env?: Record<string, string> } = {}): Promise<AgentRun> {
    return this.agent(
      [
        'apply', '--repo', AGENT.repo, '--ref', AGENT.ref, '--host', hostName, '--state-dir', AGENT.stateDir,
        '--secrets-dir', AGENT.secretsDir, ...APP_INSTEAD_OF_ARGS, '--json', '--quiet', ...(options.args ?? []),
      ],
      options.env,
    );
  }

  /** `apply` that must end as `applied`; returns its JSON. */
  async applyOk(hostName = 'lod-prod', options: { args?: string[]; env?: Record<string, string> } = {}): Promise<ApplyJson> {
    const run = await this.apply(hostName, options);
    if (run.exitCode !== 0 || run.json?.result !== 'applied') {
      throw new Error(`apply ${hostName} ended ${run.json?.result ?? '?'} (exit ${run.exitCode}): ${run.json?.error?.message ?? ''}\n${run.stderr.slice(-3000)}`);
    }
    return run.json;
  }

  /** `recover` (only resolves what a crash left behind). */
  recover(hostName = 'lod-prod'): Promise<AgentRun> {
    return this.agent(['recover', '--host', hostName, '--state-dir', AGENT.stateDir, '--quiet']);
  }

  /** The status document with the bad revisions, as `status --json` prints them. */
  async status(): Promise<StatusJson> {
    const run = await this.agent(['status', '--state-dir', AGENT.stateDir, '--json']);
    return JSON.parse(run.stdout) as StatusJson;
  }

  /** Edits one file of the working repo, commits and pushes; returns the commit id. */
  async commit(file: string, change: (text: string) => string, message?: string): Promise<string> {
    const revision = await commitEdit(this.workRepo, file, change, message);
    await this.push();
    return revision;
  }

  /** Edits several files in one commit (each edit must change its file), pushes; returns the commit id. */
  async commitAll(edits: Record<string, (text: string) => string>, message: string): Promise<string> {
    for (const [file, change] of Object.entries(edits)) {
      const path = join(this.workRepo, file);
      const before = await readFile(path, 'utf8');
      const after = change(before);
      if (after === before) throw new Error(`the edit of ${file} changed nothing`);
      await writeFile(path, after);
    }
    await git(this.workRepo, 'commit', '-q', '-am', message);
    await this.push();
    return git(this.workRepo, 'rev-parse', 'HEAD');
  }

  /** `git revert HEAD` in the working repo, pushed; returns the revert's commit id. */
  async revert(): Promise<string> {
    const revision = await revertLast(this.workRepo);
    await this.push();
    return revision;
  }

  private async push(): Promise<void> {
    await git(this.workRepo, 'push', '-q', '--force', this.box.hostPath(AGENT.repo), `HEAD:refs/heads/${AGENT.ref}`);
  }

  /** The lod app's /env answer once it answers (it may be restarting). */
  async lodEnv(): Promise<LodEnv> {
    const response = await waitUntil(
      async () => {
        const answer = await this.box.httpGet('http://127.0.0.1:8080/env');
        return answer.status === 200 ? answer : false;
      },
      { timeoutMs: 90_000, intervalMs: 200, what: 'lod to answer /env' },
    );
    return JSON.parse((response as { body: string }).body) as LodEnv;
  }

  /**
   * Mode, owner and hash of every regular file, and the target of every symlink, under `paths` (folders or files)
   * inside the container; a missing path is left out.
   */
  async snapshot(paths: string[]): Promise<FileSnapshot> {
    const script = [
      'find "$@" -xdev \\( -type f -printf "%p\\t%m %u:%g\\n" \\) -o \\( -type l -printf "%p\\t-> %l\\n" \\) 2>/dev/null | sort',
      'echo ---',
      'find "$@" -xdev -type f -exec sha256sum {} + 2>/dev/null | sort -k2',
    ].join('; ');
    const { stdout } = await this.box.exec(['sh', '-c', script, 'sh', ...paths]);
    const [listing = '', hashes = ''] = stdout.split('---\n');
    const hashOf = new Map(hashes.split('\n').filter(Boolean).map((line) => {
      const [hash = '', path = ''] = line.split(/ {2}/);
      return [path, hash] as const;
    }));
    return new Map(listing.split('\n').filter(Boolean).map((line) => {
      const [path = '', attributes = ''] = line.split('\t');
      return [path, `${attributes} ${hashOf.get(path) ?? ''}`.trim()] as const;
    }));
  }

  /**
   * How the live files differ from generation `n` as the state dir records it (content hash, mode, owner of
   * every file of its inventory); empty when the host holds exactly that generation's files.
   */
  async generationMismatches(n: number): Promise<string[]> {
    const meta = JSON.parse(await this.box.readFile(`${AGENT.stateDir}/generations/${n}/meta.json`)) as {
      inventory: { path: string; sha256: string; mode: number; owner: string; group: string; link?: boolean }[];
    };
    const live = await this.snapshot(meta.inventory.map((entry) => entry.path));
    return meta.inventory
      .map((entry) => {
        // A symlink (an app's current link) is recorded by the hash of its target; it has no mode or owner of its own.
        const expected = entry.link ? `link ${entry.sha256}` : `${entry.mode.toString(8)} ${entry.owner}:${entry.group} ${entry.sha256}`;
        const seen = live.get(entry.path);
        const target = entry.link && seen?.startsWith('-> ') ? seen.slice(3) : undefined;
        const found = target !== undefined ? `link ${createHash('sha256').update(target).digest('hex')}` : seen ?? 'missing';
        return found === expected ? '' : `${entry.path}: ${found}, generation ${n} has ${expected}`;
      })
      .filter(Boolean);
  }

  /** A unit's property as `systemctl show -p NAME --value` prints it. */
  async unitProperty(unit: string, property: string): Promise<string> {
    return (await this.box.exec(['systemctl', 'show', '-p', property, '--value', unit])).stdout.trim();
  }

  /** What `systemctl is-enabled` says (enabled, disabled, not-found...). */
  async enabledState(unit: string): Promise<string> {
    return (await this.box.exec(['systemctl', 'is-enabled', unit], { reject: false })).stdout.trim() || 'not-found';
  }

  /** `ufw status verbose` inside. */
  async ufwStatus(): Promise<string> {
    return (await this.box.exec(['ufw', 'status', 'verbose'])).stdout;
  }

  /** The user rules of the container's iptables (`iptables -S`, the ufw-user-* chains only). */
  async userIptables(): Promise<string[]> {
    const { stdout } = await this.box.exec(['iptables', '-S']);
    return stdout.split('\n').filter((line) => /^-A ufw-user-(input|limit)/.test(line));
  }

  /** Evidence for a failed assertion: the units' state and the journal tail. */
  async evidence(units: string[] = ['lod.service', 'caddy.service']): Promise<string> {
    const states = await Promise.all(units.map(async (unit) => `${unit}: ${await this.box.unitState(unit)}`));
    return `${states.join(', ')}\n${await this.box.journal('*', 60)}`;
  }

  /**
   * Installs the agent as an operator would (as the .deb does, adapted to the read-only bound project): the
   * `edge-reconciler` command, the project's unit in /etc/systemd/system, a webhook secret (0600), the host config
   * (0600) following the forge's release branch for lod-prod; then `systemctl enable --now`. Returns the webhook
   * secret.
   */
  async installService(config: ServiceConfig = {}): Promise<string> {
    await this.box.writeFile(SERVICE.bin, `#!/bin/sh\nexec /usr/local/bin/node ${AGENT.cli} "$@"\n`, 0o755);
    await this.box.writeFile(`/etc/systemd/system/${SERVICE.unit}`, await readFile(join(PROJECT_ROOT, 'systemd', SERVICE.unit)), 0o644);
    const secret = randomBytes(24).toString('base64');
    await this.box.writeFile(SERVICE.webhookSecretFile, `${secret}\n`, 0o600);
    await this.writeServiceConfig(config);
    await this.box.exec(['systemctl', 'daemon-reload']);
    await this.box.exec(['systemctl', 'enable', '--now', SERVICE.unit]);
    return secret;
  }

  /** Writes /etc/edge-reconciler/config.yaml (0600); the agent reads it at start (`systemctl restart` after). */
  async writeServiceConfig(config: ServiceConfig = {}): Promise<void> {
    const document = {
      repo: AGENT.repo,
      ref: AGENT.ref,
      host: 'lod-prod',
      stateDir: AGENT.stateDir,
      secretsDir: AGENT.secretsDir,
      listen: SERVICE.listen,
      webhook: { enabled: config.webhook?.enabled ?? true, secretFile: SERVICE.webhookSecretFile },
      poll: { enabled: true, intervalSeconds: 3600, jitterSeconds: 0, ...config.poll },
      ...(config.drift ? { drift: config.drift } : {}),
      apps: APPS_HOST_CONFIG,
    };
    await this.box.writeFile(SERVICE.config, `# written by the e2e test (edge-reconciler init writes a commented one)\n${stringify(document)}`, 0o600);
  }

  /** How `systemd-analyze security` rates a unit inside: the overall exposure (NaN when absent) and the report. */
  async securityExposure(unit: string): Promise<{ exposure: number; report: string }> {
    const report = (await this.box.exec(['systemd-analyze', 'security', '--no-pager', unit])).stdout;
    return { exposure: Number(/Overall exposure level for \S+: ([\d.]+)/.exec(report)?.[1]), report };
  }

  /** The running agent's `/status` (undefined while it does not answer). */
  async serviceStatus(): Promise<ServiceStatus | undefined> {
    const answer = await this.box.httpGet(`http://${SERVICE.listen}/status`).catch(() => undefined);
    return answer?.status === 200 ? (JSON.parse(answer.body) as ServiceStatus) : undefined;
  }

  /** Waits until the running agent reports `revision` as live (applied and healthy); returns its status. */
  async waitUntilLive(revision: string, timeoutMs = 60_000, intervalMs = 100): Promise<ServiceStatus> {
    return waitUntil(
      async () => {
        const status = await this.serviceStatus();
        return status?.lastApplied?.revision === revision ? status : false;
      },
      { timeoutMs, intervalMs, what: `revision ${revision.slice(0, 12)} live` },
    ) as Promise<ServiceStatus>;
  }

  /**
   * POSTs a GitHub push webhook for the release branch with curl from inside the container, signed with `secret`
   * (HMAC-SHA256 of the body, `X-Hub-Signature-256`), as GitHub sends it.
   */
  async sendWebhook(after: string, secret: string, delivery = 'e2e-1'): Promise<{ status: number; body: string }> {
    const payload = JSON.stringify({ ref: `refs/heads/${AGENT.ref}`, before: '0'.repeat(40), after, repository: { full_name: 'acme/desired-state' } });
    const signature = `sha256=${createHmac('sha256', secret).update(payload).digest('hex')}`;
    const { stdout } = await this.box.exec(
      [
        'curl', '-sS', '--max-time', '10', '-X', 'POST', '--data-binary', '@-', '-H', 'content-type: application/json',
        '-H', 'x-github-event: push', '-H', `x-github-delivery: ${delivery}`, '-H', `x-hub-signature-256: ${signature}`,
        '-w', '\n%{http_code}', `http://${SERVICE.listen}/webhook/github`,
      ],
      { input: payload },
    );
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
  }

  /** Powers the container off and removes it (and the repos inside it). */
  shutdown(): Promise<void> {
    return this.box.shutdown();
  }
}
