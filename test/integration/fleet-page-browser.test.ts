/**
 * The fleet page in a real headless browser (Debian's chromium driven by playwright-core): served by one of
 * three agents on loopback, it loads under its own Content-Security-Policy without a single console error, shows
 * every host of the inventory with its state, passes axe-core's landmark, table and colour-contrast rules, and
 * reads on a phone as one card per host without sideways scrolling. Screenshots are kept in test-artifacts/.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { appendFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createLoopbackFleet, startFleetScenario, type FleetAgent, type LoopbackFleet } from '../helpers/fleet-agents.js';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

/** Where the screenshots go (gitignored): a look at the page after a run, and the source of docs/fleet-page.png. */
const ARTIFACTS = join(PROJECT_ROOT, 'test-artifacts');

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** The axe rules the page must pass: landmarks, document structure, tables and contrast. */
const AXE_RULES = [
  'color-contrast',
  'landmark-banner-is-top-level',
  'landmark-contentinfo-is-top-level',
  'landmark-main-is-top-level',
  'landmark-no-duplicate-banner',
  'landmark-no-duplicate-contentinfo',
  'landmark-no-duplicate-main',
  'landmark-one-main',
  'landmark-unique',
  'region',
  'document-title',
  'html-has-lang',
  'html-lang-valid',
  'page-has-heading-one',
  'meta-viewport',
  'th-has-data-cells',
  'td-headers-attr',
  'scope-attr-valid',
  'empty-table-header',
];

interface AxeResult {
  violations: { id: string; help: string; nodes: { target: string[]; failureSummary?: string }[] }[];
  passes: { id: string }[];
}

describe('fleet page: in a headless browser', function () {
  this.timeout(180_000);
  let fleet: LoopbackFleet;
  let context: BrowserContext;
  let profile: string;
  let axeSource: string;
  let url: string;

  before(async () => {
    fleet = await createLoopbackFleet();
    await startFleetScenario(fleet);
    const prod = fleet.agents.get('lod-prod') as FleetAgent;
    await appendFile(join(prod.root, 'etc/logrotate.d/edge-apps'), '# edited by hand\n');
    await fetch(`${prod.url}/reconcile`, { method: 'POST' });
    await until('lod-prod to report drift', async () => ((await fleet.status('lod-prod')).lastAttempted?.result === 'drifted' ? true : undefined));
    url = `${prod.url}/`;
    axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    await mkdir(ARTIFACTS, { recursive: true });
    profile = await mkdtemp(join(tmpdir(), 'edge-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
  });
  after(async () => {
    await context?.close();
    await fleet?.stop();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  const open = async (viewport: { width: number; height: number }): Promise<{ page: Page; problems: string[] }> => {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.setViewportSize(viewport);
    const response = await page.goto(url, { waitUntil: 'load' });
    assert.equal(response?.status(), 200);
    return { page, problems };
  };

  const axe = async (page: Page): Promise<AxeResult> => {
    // Evaluated through the DevTools protocol, which the page's CSP (no script at all) does not govern.
    await page.evaluate(axeSource);
    return page.evaluate(async (rules) => {
      const axeApi = (globalThis as unknown as { axe: { run: (context: unknown, options: unknown) => Promise<AxeResult> } }).axe;
      const result = await axeApi.run(document, { runOnly: { type: 'rule', values: rules }, resultTypes: ['violations', 'passes'] });
      return { violations: result.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) })), passes: result.passes.map((p) => ({ id: p.id })) };
    }, AXE_RULES);
  };

  it('loads without errors and shows every host with its state', async () => {
    const { page, problems } = await open({ width: 1440, height: 900 });
    assert.match(await page.title(), /^Fleet: 4 hosts \(2 need attention\)/);
    const rows = await page.locator('tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({ id: tr.id, health: tr.querySelector('.badge')?.textContent ?? '', text: (tr as HTMLElement).innerText.replace(/\s+/g, ' ') })),
    );
    assert.deepEqual(
      rows.map((row) => [row.id, row.health]),
      [
        ['host-lod-standby', 'held'],
        ['host-model-gateway', 'unreachable'],
        ['host-lod-prod', 'ok'],
        ['host-caddy-router', 'failing'],
      ],
    );
    const text = new Map(rows.map((row) => [row.id, row.text]));
    assert.match(text.get('host-lod-standby') ?? '', /suspended .* by ops: disk swap <b>tonight<\/b>/, 'markup in a reason shows as text');
    assert.match(text.get('host-model-gateway') ?? '', /unreachable connection refused/);
    assert.match(text.get('host-lod-prod') ?? '', /\(this host\).*lod-prod: 6 workers; router: drop acmeEmail.*drifted.*1 file: \/etc\/logrotate\.d\/edge-apps.*wave 2/);
    assert.match(text.get('host-caddy-router') ?? '', /invalid .*TEMPLATE_UNKNOWN_VARIABLE.*wave 3/);
    assert.equal(await page.locator('script').count(), 0);
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-page.png'), fullPage: true });
    assert.deepEqual(problems, [], 'no console errors, no CSP violations');
    await page.close();
  });

  it('passes the landmark, table and colour-contrast checks of axe-core', async () => {
    const { page } = await open({ width: 1440, height: 900 });
    const result = await axe(page);
    assert.deepEqual(result.violations, []);
    const passed = new Set(result.passes.map((rule) => rule.id));
    for (const rule of ['color-contrast', 'landmark-one-main', 'region', 'html-has-lang', 'document-title', 'th-has-data-cells']) assert.ok(passed.has(rule), `${rule} was checked and passed`);
    await page.close();
  });

  it('reads on a phone: one card per host, no sideways scrolling, same checks', async () => {
    const { page, problems } = await open({ width: 390, height: 844 });
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      width: window.innerWidth,
      rowDisplay: getComputedStyle(document.querySelector('tbody tr') as Element).display,
      label: getComputedStyle(document.querySelector('tbody td') as Element, '::before').content,
    }));
    assert.ok(layout.scrollWidth <= layout.width, `the page is ${layout.scrollWidth} px wide on a ${layout.width} px screen`);
    assert.equal(layout.rowDisplay, 'block');
    assert.equal(layout.label, '"Health"');
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-page-phone.png'), fullPage: true });
    const result = await axe(page);
    assert.deepEqual(result.violations, []);
    assert.deepEqual(problems, []);
    await page.close();
  });
});
