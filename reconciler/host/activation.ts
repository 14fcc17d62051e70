/**
 * Activation: makes the running system follow the files, doing only what the plan says changed. One
 * daemon-reload; enable, start, restart and reload exactly the planned units; run `onChange` commands; reload
 * Caddy (a failed reload keeps Caddy's old config and counts as a failure); apply the firewall behind a
 * dead-man switch that restores the previous rules unless the run disarms it in time.
 */
import { EdgeError } from '../errors.js';
import { crashPoint } from './crash-points.js';
import type { CommandResult, CommandRunner, Host } from './host.js';
import type { Activation } from '../model.js';

/** What activation needs from the run. */
export interface ActivationContext {
  runner: CommandRunner;
  host: Host;
  /** Names the revision in error messages. */
  revision: string;
  /** A private dir for the firewall's scratch copy and saved rules (the transaction dir). */
  workDir: string;
  /** Seconds before the dead-man switch restores the previous firewall. */
  deadmanSeconds: number;
  redact: (text: string) => string;
  signal?: AbortSignal;
  /** Every command run, for status and `--dry-activate` output. */
  log: string[][];
}

/** The transient unit that restores the previous firewall unless disarmed. */
export const DEADMAN_UNIT = 'edge-reconciler-ufw-deadman';

async function must(ctx: ActivationContext, argv: string[], what: string, code = 'ACTIVATION_FAILED'): Promise<CommandResult> {
  ctx.log.push(argv);
  const result = await ctx.runner.run(argv, { timeoutMs: 120_000, signal: ctx.signal });
  if (result.exitCode !== 0) {
    const detail = ctx.redact((result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | '));
    throw new EdgeError(code, `failed to ${what} for ${ctx.revision.slice(0, 12)} (exit ${result.exitCode}): ${detail}`, {
      stage: 'activate',
      retry: 'invalid',
    });
  }
  return result;
}

/** Stops and disables units whose files are about to be removed: before the files go. */
export async function deactivateRemoved(activation: Activation, ctx: ActivationContext): Promise<void> {
  for (const unit of activation.stop) await must(ctx, ['systemctl', 'stop', unit], `stop ${unit}`);
  if (activation.disable.length > 0) {
    await must(ctx, ['systemctl', 'disable', ...activation.disable], `disable ${activation.disable.join(', ')}`);
  }
  crashPoint('apply:deactivated');
}

/**
 * Runs the activation of a plan after the files are in place. `firewallRules` are the ufw command lines of the
 * new generation, in order.
 */
export async function activate(activation: Activation, ctx: ActivationContext, firewallRules: string[]): Promise<void> {
  if (activation.daemonReload) await must(ctx, ['systemctl', 'daemon-reload'], 'reload systemd');
  crashPoint('activate:daemon-reload');
  if (activation.enable.length > 0) {
    await must(ctx, ['systemctl', 'enable', ...activation.enable], `enable ${activation.enable.join(', ')}`);
  }
  crashPoint('activate:enable');
  for (const unit of activation.start) await must(ctx, ['systemctl', 'start', unit], `start ${unit}`);
  crashPoint('activate:start');
  for (const unit of activation.restart) await must(ctx, ['systemctl', 'restart', unit], `restart ${unit}`);
  crashPoint('activate:restart');
  for (const unit of activation.reload) await must(ctx, ['systemctl', 'reload', unit], `reload ${unit}`);
  for (const command of activation.run) await must(ctx, command, `run ${command.join(' ')}`);
  crashPoint('activate:run');
  if (activation.caddyReload) await reloadCaddy(ctx);
  crashPoint('activate:caddy');
  if (activation.firewall) await applyFirewall(ctx, firewallRules);
  crashPoint('activate:firewall');
}

/** Reloads a running Caddy (its exit code is the verdict: a failed reload keeps the old config); starts a stopped one. */
async function reloadCaddy(ctx: ActivationContext): Promise<void> {
  ctx.log.push(['systemctl', 'is-active', 'caddy.service']);
  const active = await ctx.runner.run(['systemctl', 'is-active', 'caddy.service']);
  const verb = active.exitCode === 0 ? 'reload' : 'restart';
  await must(ctx, ['systemctl', verb, 'caddy.service'], `${verb} caddy (its old config stays live)`, 'CADDY_RELOAD_FAILED');
}

const UFW_FILES = ['/etc/ufw/user.rules', '/etc/ufw/user6.rules', '/etc/default/ufw', '/etc/ufw/ufw.conf'];

/** The shell-safe form of a path. */
function quote(path: string): string {
  return `'${path.replace(/'/g, `'\\''`)}'`;
}

/**
 * Applies the new rule set without a window where the firewall is open: the rules are built by ufw itself in a
 * private mount namespace over a scratch copy of its files (disabled there, so it touches no iptables), then the
 * built files replace the live ones and are loaded: a stopped ufw is enabled; on a running one the user chains are
 * swapped by one `iptables-restore -n` per family (atomic), and only changed default policies take ufw's full
 * reload. The previous files are saved first, and a transient systemd timer puts them back unless `disarmDeadman`
 * runs before it fires.
 */
async function applyFirewall(ctx: ActivationContext, rules: string[]): Promise<void> {
  const saved = `${ctx.workDir}/ufw-saved`;
  const scratch = `${ctx.workDir}/ufw-scratch`;
  const save = [
    `rm -rf ${quote(saved)} ${quote(scratch)}`,
    `mkdir -p ${quote(saved)} ${quote(scratch)}/etc-ufw`,
    ...UFW_FILES.map((file) => `cp -p ${file} ${quote(saved)}/`),
    `cp -a /etc/ufw/. ${quote(scratch)}/etc-ufw/`,
    `cp /usr/share/ufw/iptables/user.rules /usr/share/ufw/iptables/user6.rules ${quote(scratch)}/etc-ufw/`,
    `cp -p /etc/default/ufw ${quote(scratch)}/default-ufw`,
    `sed -i 's/^ENABLED=.*/ENABLED=no/' ${quote(scratch)}/etc-ufw/ufw.conf`,
  ];
  const restore = [
    ...UFW_FILES.map((file) => `cp -p ${quote(saved)}/${file.split('/').pop()} ${file}`),
    `if grep -q '^ENABLED=yes' /etc/ufw/ufw.conf; then ufw reload; else ufw --force disable; fi`,
  ];
  const build = [
    `mount --bind ${quote(scratch)}/etc-ufw /etc/ufw`,
    `mount --bind ${quote(scratch)}/default-ufw /etc/default/ufw`,
    ...rules.map((line) => `ufw ${line} >/dev/null`),
  ];
  const install = [
    `cp ${quote(scratch)}/etc-ufw/user.rules /etc/ufw/user.rules.edge-new && mv /etc/ufw/user.rules.edge-new /etc/ufw/user.rules`,
    `cp ${quote(scratch)}/etc-ufw/user6.rules /etc/ufw/user6.rules.edge-new && mv /etc/ufw/user6.rules.edge-new /etc/ufw/user6.rules`,
    `cp ${quote(scratch)}/default-ufw /etc/default/ufw.edge-new && mv /etc/default/ufw.edge-new /etc/default/ufw`,
    // `ufw enable` loads nothing into a running ufw (ufw-init: "Firewall already started"), and `ufw reload`
    // stops it first (policies ACCEPT for a moment).
    'if ! iptables -n -L ufw-user-input >/dev/null 2>&1; then ufw --force enable >/dev/null',
    `elif cmp -s ${quote(saved)}/ufw /etc/default/ufw; then`,
    '  iptables-restore -n < /etc/ufw/user.rules',
    '  if ip6tables -n -L ufw6-user-input >/dev/null 2>&1; then ip6tables-restore -n < /etc/ufw/user6.rules; fi',
    'else ufw reload >/dev/null; fi',
  ];
  await must(ctx, ['sh', '-ec', save.join('\n')], 'save the current firewall rules', 'FIREWALL_FAILED');
  await must(ctx, ['sh', '-ec', `cat > ${quote(saved)}/restore.sh <<'EOF'\n${restore.join('\n')}\nEOF`], 'write the firewall restore script', 'FIREWALL_FAILED');
  await disarmDeadman(ctx);
  await must(
    ctx,
    ['systemd-run', `--unit=${DEADMAN_UNIT}`, `--on-active=${ctx.deadmanSeconds}s`, '--timer-property=AccuracySec=1s', '/bin/sh', `${saved}/restore.sh`],
    'arm the firewall dead-man switch',
    'FIREWALL_FAILED',
  );
  crashPoint('activate:firewall-armed');
  await must(ctx, ['unshare', '--mount', '--propagation', 'private', 'sh', '-ec', build.join('\n')], 'build the new firewall rules', 'FIREWALL_FAILED');
  await must(ctx, ['sh', '-ec', install.join('\n')], 'load the new firewall rules', 'FIREWALL_FAILED');
}

/** Cancels a pending dead-man switch: the new firewall stays. Harmless when none is armed. */
export async function disarmDeadman(ctx: Pick<ActivationContext, 'runner' | 'log'>): Promise<void> {
  for (const argv of [
    ['systemctl', 'stop', `${DEADMAN_UNIT}.timer`],
    ['systemctl', 'reset-failed', `${DEADMAN_UNIT}.service`, `${DEADMAN_UNIT}.timer`],
  ]) {
    ctx.log.push(argv);
    await ctx.runner.run(argv);
  }
}

/** Puts the saved firewall back now (a rollback), then disarms the switch. */
export async function restoreFirewall(ctx: ActivationContext): Promise<void> {
  await must(ctx, ['/bin/sh', `${ctx.workDir}/ufw-saved/restore.sh`], 'restore the previous firewall rules', 'FIREWALL_FAILED');
  await disarmDeadman(ctx);
}

/** The ufw command lines of a rules file (comments and blank lines dropped). */
export function firewallLines(content: string): string[] {
  return content
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
