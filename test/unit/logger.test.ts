/**
 * The agent's log lines (docs/logs.md): journald's `<N>` priority prefix by level, ISO 8601 times, the stable
 * fields, secrets redacted, a pretty format for terminals; one line per stage with its duration, a failing stage
 * at err and a refusing one at warning; the run's last line at the level of its result.
 */
import assert from 'node:assert/strict';
import { createLogger, formatLine, parseLogFormat, stderrIsJournal } from '../../reconciler/cli/logger.js';
import { EdgeError } from '../../reconciler/errors.js';
import { runStages } from '../../reconciler/pipeline.js';
import { runLogLevel, type RunContext, type RunState } from '../../reconciler/run-context.js';
import type { RunResult } from '../../reconciler/state/status.js';

function collect(options: Parameters<typeof createLogger>[1] = {}) {
  const lines: string[] = [];
  const log = createLogger((text) => text.replaceAll('s3cr3t-value', '[redacted]'), { ...(typeof options === 'object' ? options : {}), write: (line) => lines.push(line) });
  return { log, lines };
}

describe('logs', () => {
  it('prefix each JSON line with its syslog priority: err, warning, notice, info, debug', () => {
    const { log, lines } = collect({ priorityPrefix: true, format: 'json', host: 'lod-prod' });
    log.error({ code: 'HEALTH_FAILED' }, 'e');
    log.warn({}, 'w');
    log.notice?.({}, 'n');
    log.info({}, 'i');
    log.debug?.({}, 'd');
    assert.deepEqual(lines.map((line) => line.slice(0, 3)), ['<3>', '<4>', '<5>', '<6>', '<7>']);
    const first = JSON.parse(lines[0]?.slice(3) ?? '') as Record<string, unknown>;
    assert.equal(first.level, 'error');
    assert.equal(first.host, 'lod-prod');
    assert.equal(first.code, 'HEALTH_FAILED');
    assert.match(String(first.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(lines.every((line) => line.endsWith('\n') && line.indexOf('\n') === line.length - 1), 'one line per entry');
  });

  it('write no prefix when not asked, and only warnings and errors when quiet', () => {
    const { log, lines } = collect({ quiet: true, format: 'json', priorityPrefix: false });
    log.info({}, 'hidden');
    log.debug?.({}, 'hidden');
    log.warn({}, 'shown');
    assert.equal(lines.length, 1);
    assert.ok(lines[0]?.startsWith('{'));
  });

  it('redact secret values in messages and in fields, commands included, whole', () => {
    const { log, lines } = collect({ format: 'json', priorityPrefix: false });
    log.error({ commands: ['sh -ec echo s3cr3t-value\nsecond line'], nested: { url: 'https://user:s3cr3t-value@forge/x.git' } }, 'failed with s3cr3t-value');
    const text = lines.join('');
    assert.ok(!text.includes('s3cr3t-value'), text);
    const entry = JSON.parse(text) as { commands: string[]; msg: string };
    assert.equal(entry.commands[0], 'sh -ec echo [redacted]\nsecond line', 'the whole multi-line command');
    assert.equal(entry.msg, 'failed with [redacted]');
  });

  it('print a pretty line for a terminal: time, level, message, fields', () => {
    const { log, lines } = collect({ format: 'pretty', priorityPrefix: false, host: 'h1' });
    log.notice?.({ stage: 'apply', reasons: ['poll'] }, 'reconcile applied');
    assert.match(lines[0] ?? '', /^\d{4}-\d\d-\d\dT[\d:.]+Z NOTICE reconcile applied {2}host=h1 stage=apply reasons=\["poll"\]\n$/);
    assert.equal(formatLine('{"level":"warn","time":"t","msg":"m"}', 'pretty', true), '<4>t WARN   m\n');
  });

  it('take the prefix only when stderr is the journal stream systemd names', () => {
    assert.equal(stderrIsJournal({}), false);
    assert.equal(stderrIsJournal({ JOURNAL_STREAM: '0:0' }), false);
  });

  it('refuse an unknown --log-format with USAGE', () => {
    assert.equal(parseLogFormat(undefined), undefined);
    assert.equal(parseLogFormat('pretty'), 'pretty');
    assert.throws(() => parseLogFormat('xml'), (error: unknown) => error instanceof EdgeError && error.code === 'USAGE' && /json or pretty/.test(error.message));
  });

  it('end a run at the level of its result', () => {
    const levels: Record<RunResult, string> = {
      applied: 'notice',
      unchanged: 'info',
      drifted: 'warn',
      pinned: 'notice',
      suspended: 'notice',
      'outside-window': 'notice',
      refused: 'warn',
      invalid: 'error',
      'rolled-back': 'error',
      failed: 'error',
      recovered: 'warn',
      waiting: 'notice',
      halted: 'warn',
    };
    for (const [result, level] of Object.entries(levels)) assert.equal(runLogLevel(result as RunResult), level, result);
  });

  it('log one line per stage with its duration: debug when it passed, err when it failed, warning when it refused', async () => {
    const { log, lines } = collect({ format: 'json', priorityPrefix: true });
    const ctx = { log, redact: (text: string) => text } as unknown as RunContext;
    const state: RunState = { previous: [], commands: [], durations: {}, revision: 'a'.repeat(40) };
    await runStages([{ stage: 'load', run: async () => undefined }], ctx, state);
    await assert.rejects(
      runStages([{ stage: 'health', run: async () => { throw new EdgeError('HEALTH_FAILED', 'lod-http failed', { stage: 'health', retry: 'invalid' }); } }], ctx, state),
    );
    await assert.rejects(
      runStages([{ stage: 'fetch', run: async () => { throw new EdgeError('REVISION_UNSIGNED', 'not signed', { stage: 'fetch', retry: 'refused' }); } }], ctx, state),
    );
    const entries = lines.map((line): Record<string, unknown> => ({ priority: line.slice(0, 3), ...(JSON.parse(line.slice(3)) as Record<string, unknown>) }));
    assert.deepEqual(
      entries.map((entry) => [entry.priority, entry.stage, entry.result, entry.code, entry.revision, typeof entry.durationMs]),
      [
        ['<7>', 'load', 'ok', undefined, 'a'.repeat(40), 'number'],
        ['<3>', 'health', 'failed', 'HEALTH_FAILED', 'a'.repeat(40), 'number'],
        ['<4>', 'fetch', 'refused', 'REVISION_UNSIGNED', 'a'.repeat(40), 'number'],
      ],
    );
    assert.match(String(entries[1]?.msg), /^stage health failed after [\d.]+ ms \[HEALTH_FAILED\]$/);
  });
});
