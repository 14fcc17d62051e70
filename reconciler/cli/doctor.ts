/**
 * `edge-reconciler doctor`: is this host ready for the agent? Checks the host config, the tools the host's kinds
 * need, that the repo is reachable and renders this host, that every secret it uses is in place, that the listen
 * address is free (or the agent's), and says what the first apply would do to the firewall. Exit 0 when nothing
 * fails; warnings do not fail.
 */
import type { Command } from 'commander';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { findExecutable } from '../host/sandbox.js';
import { DEFAULT_CONFIG_PATH, loadHostConfig, parseListen, type HostConfig } from '../config/host-config.js';
import { formatDefaults, formatRule, UFW_BUILTIN_DEFAULTS } from '../../renderers/ufw/rule-text.js';
import type { RenderedFile } from '../../renderers/types.js';
import { neededSecrets, previewHost, type HostPreview } from './host-preview.js';
import { describeError, out } from './io.js';
import { secretReports } from './secrets.js';

/** One line of the verdict. */
export interface Finding {
  verdict: 'ok' | 'warn' | 'FAIL';
  what: string;
  detail: string;
}

const plain = (text: string) => text;

/** Registers the `doctor` command. */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check that this host is ready: config, tools, repo, secrets, listen address, and the first firewall change')
    .option('--config <path>', 'the host config', DEFAULT_CONFIG_PATH)
    .option('--repo <dir>', 'read the desired state from this checkout instead of fetching the configured repo')
    .option('--json', 'print JSON')
    .action(async (options: { config: string; repo?: string; json?: boolean }) => {
      const findings = await diagnose(options.config, options.repo);
      if (options.json) out(JSON.stringify({ ok: !findings.some((f) => f.verdict === 'FAIL'), findings }, null, 2), plain);
      else out(findings.map((f) => `${f.verdict.padEnd(4)}  ${f.what}: ${f.detail}`).join('\n'), plain);
      process.exitCode = findings.some((f) => f.verdict === 'FAIL') ? 1 : 0;
    });
}

/** Every finding, in the order an operator fixes them; stops early only when the config does not load. */
export async function diagnose(configPath: string, repoDir?: string): Promise<Finding[]> {
  let config: HostConfig;
  try {
    config = await loadHostConfig(configPath);
  } catch (error) {
    return [{ verdict: 'FAIL', what: 'config', detail: describeError(error) }];
  }
  const source = config.tagPattern !== undefined ? `the newest tag matching ${config.tagPattern}` : `branch ${config.ref}`;
  const findings: Finding[] = [{ verdict: 'ok', what: 'config', detail: `${configPath}: host ${config.host}, ${source} of ${config.repo}` }];

  let preview: HostPreview | undefined;
  try {
    preview = await previewHost(config, repoDir);
    findings.push({ verdict: 'ok', what: 'repo', detail: `${preview.revision.slice(0, 12)} renders ${preview.files.length} files for ${config.host}` });
  } catch (error) {
    findings.push({ verdict: 'FAIL', what: 'repo', detail: describeError(error) });
  }
  findings.push(...(await toolFindings(preview?.files ?? [])));
  if (preview) {
    const reports = await secretReports(config.secretsDir, neededSecrets(preview.files));
    const missing = reports.filter((report) => report.state !== 'present');
    findings.push(
      missing.length === 0
        ? { verdict: 'ok', what: 'secrets', detail: reports.length === 0 ? 'none needed' : `${reports.length} present in ${config.secretsDir}` }
        : { verdict: 'FAIL', what: 'secrets', detail: missing.map((report) => `${report.name} ${report.state}`).join(', ') + ' (edge-reconciler secrets list)' },
    );
    const firewall = await firewallFinding(preview.files);
    if (firewall) findings.push(firewall);
  }
  findings.push(await listenFinding(config.listen));
  return findings;
}

/** The tools every host needs, and those its kinds need (caddy for Caddy files, ufw for firewall rules). */
async function toolFindings(files: readonly RenderedFile[]): Promise<Finding[]> {
  const kinds = new Set(files.map((file) => file.kind));
  const tools: [string, string][] = [
    ['git', 'fetching the desired state'],
    ['systemctl', 'activation'],
    ['systemd-analyze', 'validating units'],
    ['unshare', 'confining the repo\'s commands'],
  ];
  if (kinds.has('caddy')) tools.push(['caddy', 'validating and reloading Caddy files']);
  if (kinds.has('ufw')) tools.push(['ufw', 'the firewall rules']);
  const missing: string[] = [];
  for (const [tool, why] of tools) {
    if (!(await findExecutable(tool))) missing.push(`${tool} (${why})`);
  }
  return [
    missing.length === 0
      ? { verdict: 'ok', what: 'tools', detail: tools.map(([tool]) => tool).join(', ') }
      : { verdict: 'FAIL', what: 'tools', detail: `missing: ${missing.join(', ')}` },
  ];
}

/** What the first apply does to the firewall, in ufw's words, when the host has rules. */
async function firewallFinding(files: readonly RenderedFile[]): Promise<Finding | undefined> {
  const sets = files.flatMap((file) => (file.ufw ? [file.ufw] : []));
  if (sets.length === 0) return undefined;
  const defaults = sets.find((set) => set.defaults)?.defaults ?? UFW_BUILTIN_DEFAULTS;
  const rules = sets.flatMap((set) => set.rules).map(formatRule);
  const status = await execa('ufw', ['status'], { reject: false, env: { LC_ALL: 'C' } });
  const active = /^Status: active/m.test(status.stdout);
  const policy = formatDefaults(defaults).join(', ');
  const detail = active
    ? `ufw is active; the first apply replaces its rules with: ${policy}; ${rules.join('; ')}`
    : `ufw will be ENABLED by the first apply: ${policy}; only these pass: ${rules.join('; ')}`;
  const absent = [...new Set(sets.flatMap((set) => set.rules).flatMap((rule) => (rule.interface ? [rule.interface] : [])))].filter(
    (name) => !existsSync(`/sys/class/net/${name}`),
  );
  if (absent.length > 0) {
    return { verdict: 'FAIL', what: 'firewall', detail: `rules name interface(s) this host does not have: ${absent.join(', ')} (is Tailscale up?); ${detail}` };
  }
  return { verdict: active ? 'ok' : 'warn', what: 'firewall', detail };
}

/** Whether the listen address can be bound, or is held by a running agent. */
async function listenFinding(listen: string): Promise<Finding> {
  const address = parseListen(listen);
  if (!address) return { verdict: 'FAIL', what: 'listen', detail: `cannot parse ${listen}` };
  const bound = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    server.listen(address.port, address.host, () => server.close(() => resolve(undefined)));
  });
  if (!bound) return { verdict: 'ok', what: 'listen', detail: `${listen} is free` };
  if (bound.code === 'EADDRINUSE') {
    const host = address.host.includes(':') ? `[${address.host}]` : address.host;
    const agent = await fetch(`http://${host}:${address.port}/healthz`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.ok, () => false);
    return agent
      ? { verdict: 'ok', what: 'listen', detail: `${listen} is the running agent's` }
      : { verdict: 'FAIL', what: 'listen', detail: `${listen} is in use by another program` };
  }
  return { verdict: 'FAIL', what: 'listen', detail: `cannot listen on ${listen}: ${bound.code ?? bound.message}` };
}
