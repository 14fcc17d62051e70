/**
 * A process that takes a state dir's lock, for the lock tests: `node lock-holder.js <lock> <log> <rounds> <holdMs>`
 * takes the lock `rounds` times, each time appending `enter <pid>` to the log, holding it `holdMs` (a holder slowed
 * down on purpose), appending `leave <pid>` and releasing it. `holdMs` of -1 holds the lock until killed.
 */
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireLock } from '../../reconciler/state/lock.js';

const [lock, log, rounds = '1', holdMs = '-1'] = process.argv.slice(2);
if (!lock || !log) throw new Error('usage: lock-holder <lock> <log> [rounds] [holdMs]');
for (let round = 0; round < Number(rounds); round++) {
  const unlock = await acquireLock(lock, 120_000);
  appendFileSync(log, `enter ${process.pid}\n`);
  if (Number(holdMs) < 0) await new Promise(() => setInterval(() => undefined, 60_000));
  await sleep(Number(holdMs));
  appendFileSync(log, `leave ${process.pid}\n`);
  await unlock();
}
