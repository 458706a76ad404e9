/**
 * One process charging failures to a throttle in a shared SQLite file, for the test that several
 * processes never lose a count. Argv: file, kind (window | backoff), key, failures, now.
 * Prints "ready", waits for a line on stdin, records its failures, then prints "done".
 */
import { createInterface } from 'node:readline';
import { connectDatabase } from '../../src/db/database.js';
import { createBackoff, createRateLimit } from '../../src/services/rate-limit.js';

const [file = '', kind = '', key = '', failures = '0', now = '0'] = process.argv.slice(2);
const database = await connectDatabase({ sqliteFile: file });
const clock = () => Number(now);
const throttle =
  kind === 'window'
    ? createRateLimit({ database, clock, scope: 'test.window', limit: 1_000_000, windowMs: 60 * 60 * 1000 })
    : createBackoff({
        database,
        clock,
        scope: 'test.backoff',
        freeFailures: 1_000_000,
        forgetOneMs: 60 * 60 * 1000,
        firstDelayMs: 1000,
        maxDelayMs: 60 * 60 * 1000,
      });
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
lines.once('line', async () => {
  for (let i = 0; i < Number(failures); i++) await throttle.recordFailure(key);
  await database.close();
  process.stdout.write('done\n');
  lines.close();
});
