/** Maintenance windows: allow and deny windows read in their time zone, across DST changes, with the next opening. */
import assert from 'node:assert/strict';
import { applyAllowed, cronProblem, formatInZone, isValidTimeZone, type MaintenanceConfig, type MaintenanceWindow } from '../../reconciler/config/schedule.js';

const weekdayNights: MaintenanceWindow = { action: 'allow', cron: '* 2-4 * * 1-5', description: 'weekday nights' };
const fridayFreeze: MaintenanceWindow = { action: 'deny', cron: '0 12 * * 5', durationMinutes: 3600, description: 'weekend freeze' };

interface Case {
  name: string;
  timezone: string;
  windows: MaintenanceWindow[];
  /** An instant, always written in UTC so the expectation does not depend on the machine's zone. */
  now: string;
  allowed: boolean;
  nextOpen?: string;
  reason?: RegExp;
}

const cases: Case[] = [
  { name: 'no windows: always allowed', timezone: 'UTC', windows: [], now: '2026-05-01T12:00:00Z', allowed: true, reason: /no maintenance windows/ },
  { name: 'allow window: its first minute is inside', timezone: 'UTC', windows: [weekdayNights], now: '2026-03-30T02:00:00Z', allowed: true, reason: /inside allow window 0 \(\* 2-4 \* \* 1-5: weekday nights\)/ },
  { name: 'allow window: its last minute is inside (seconds do not matter)', timezone: 'UTC', windows: [weekdayNights], now: '2026-03-30T04:59:59Z', allowed: true },
  { name: 'allow window: closed after 04:59, opens the next weekday night', timezone: 'UTC', windows: [weekdayNights], now: '2026-03-30T05:00:00Z', allowed: false, nextOpen: '2026-03-31T02:00:00Z', reason: /outside every allow window; next open 2026-03-31 02:00 UTC/ },
  { name: 'allow window: saturday waits for monday', timezone: 'UTC', windows: [weekdayNights], now: '2026-04-04T03:00:00Z', allowed: false, nextOpen: '2026-04-06T02:00:00Z' },
  { name: 'windows are read in their time zone (Berlin, CEST)', timezone: 'Europe/Berlin', windows: [weekdayNights], now: '2026-03-30T00:30:00Z', allowed: true },
  { name: 'the same instant is outside the window in UTC', timezone: 'UTC', windows: [weekdayNights], now: '2026-03-30T00:30:00Z', allowed: false, nextOpen: '2026-03-30T02:00:00Z' },
  { name: 'Berlin in winter is UTC+1', timezone: 'Europe/Berlin', windows: [weekdayNights], now: '2026-03-27T03:59:00Z', allowed: true },
  { name: 'New York: 09:00 for an hour in summer (EDT)', timezone: 'America/New_York', windows: [{ action: 'allow', cron: '0 9 * * *', durationMinutes: 60 }], now: '2026-07-01T13:30:00Z', allowed: true },
  { name: 'New York: the same UTC time in winter (EST) is before the window', timezone: 'America/New_York', windows: [{ action: 'allow', cron: '0 9 * * *', durationMinutes: 60 }], now: '2026-01-15T13:30:00Z', allowed: false, nextOpen: '2026-01-15T14:00:00Z', reason: /next open 2026-01-15 09:00 America\/New_York/ },
  { name: 'DST gap (Berlin 2026-03-29): 02:xx does not exist, so an every-minute window skips the day', timezone: 'Europe/Berlin', windows: [{ action: 'allow', cron: '* 2 * * *' }], now: '2026-03-29T00:59:00Z', allowed: false, nextOpen: '2026-03-30T00:00:00Z' },
  { name: 'DST gap: a fixed 02:00 start moves to 03:00 and keeps its duration', timezone: 'Europe/Berlin', windows: [{ action: 'allow', cron: '0 2 * * *', durationMinutes: 60 }], now: '2026-03-29T01:30:00Z', allowed: true },
  { name: 'DST gap: before the moved start the window is still closed', timezone: 'Europe/Berlin', windows: [{ action: 'allow', cron: '0 2 * * *', durationMinutes: 60 }], now: '2026-03-29T00:30:00Z', allowed: false, nextOpen: '2026-03-29T01:00:00Z', reason: /next open 2026-03-29 03:00 Europe\/Berlin/ },
  { name: 'DST repeat (Berlin 2026-10-25): the first 02:30 is inside', timezone: 'Europe/Berlin', windows: [{ action: 'allow', cron: '* 2 * * *' }], now: '2026-10-25T00:30:00Z', allowed: true },
  { name: 'DST repeat: the second 02:30 is inside too', timezone: 'Europe/Berlin', windows: [{ action: 'allow', cron: '* 2 * * *' }], now: '2026-10-25T01:30:00Z', allowed: true },
  { name: 'a deny window wins over an open allow window', timezone: 'UTC', windows: [{ action: 'allow', cron: '* * * * *' }, fridayFreeze], now: '2026-04-03T13:00:00Z', allowed: false, nextOpen: '2026-04-06T00:00:00Z', reason: /inside deny window 1 \(0 12 \* \* 5: weekend freeze\)/ },
  { name: 'a deny window closes after its duration', timezone: 'UTC', windows: [fridayFreeze], now: '2026-04-06T00:00:00Z', allowed: true, reason: /no deny window is open/ },
  { name: 'after a deny window, wait for the next allow window', timezone: 'Europe/Berlin', windows: [weekdayNights, fridayFreeze], now: '2026-03-27T11:00:00Z', allowed: false, nextOpen: '2026-03-30T00:00:00Z', reason: /next open 2026-03-30 02:00 Europe\/Berlin/ },
  { name: 'a whole-weekend deny window is skipped in days', timezone: 'Europe/Berlin', windows: [{ action: 'deny', cron: '* * * * 6,0' }], now: '2026-03-27T23:00:00Z', allowed: false, nextOpen: '2026-03-29T22:00:00Z' },
  { name: 'a deny window that never closes has no next opening', timezone: 'UTC', windows: [{ action: 'deny', cron: '0 * * * *', durationMinutes: 120 }], now: '2026-05-01T12:00:00Z', allowed: false, reason: /no opening found before/ },
];

describe('maintenance windows', () => {
  for (const c of cases) {
    it(c.name, () => {
      const maintenance: MaintenanceConfig = { timezone: c.timezone, windows: c.windows };
      const decision = applyAllowed(maintenance, new Date(c.now));
      assert.equal(decision.allowed, c.allowed, decision.reason);
      assert.equal(decision.nextOpen?.toISOString(), c.nextOpen === undefined ? undefined : new Date(c.nextOpen).toISOString(), decision.reason);
      if (c.reason) assert.match(decision.reason, c.reason);
      if (decision.nextOpen) assert.equal(applyAllowed(maintenance, decision.nextOpen).allowed, true, 'nextOpen is open');
    });
  }

  it('names the cron problem: too few fields, a bad value, a date that never comes', () => {
    assert.match(cronProblem('* * * *', 'UTC') ?? '', /must have five fields/);
    assert.match(cronProblem('61 * * * *', 'UTC') ?? '', /cron "61 \* \* \* \*" does not parse: invalid value for minute: 61/);
    assert.match(cronProblem('0 0 30 2 *', 'UTC') ?? '', /never occurs/);
    assert.equal(cronProblem('*/15 2-4 * * mon-fri', 'Europe/Berlin'), undefined);
  });

  it('knows IANA time zones', () => {
    assert.equal(isValidTimeZone('Europe/Berlin'), true);
    assert.equal(isValidTimeZone('UTC'), true);
    assert.equal(isValidTimeZone('Mars/Olympus_Mons'), false);
  });

  it('formats instants as wall-clock time in the zone', () => {
    assert.equal(formatInZone(new Date('2026-03-29T01:00:00Z'), 'Europe/Berlin'), '2026-03-29 03:00 Europe/Berlin');
  });
});
