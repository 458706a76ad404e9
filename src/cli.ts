#!/usr/bin/env node
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { openDatabase } from './db/connection.js';
import { systemClock } from './services/clock.js';
import { createServices } from './services/index.js';
import type { ReconcileReport } from './services/reconcile.js';
import { createStorage } from './storage/s3.js';
import { storageOptions } from './storage-setup.js';

const USAGE = `Usage: s3-gallery <command> [options]

Commands:
  reconcile [--apply]   Bring the database and the bucket back into agreement (dry run without --apply).
                        With the embedded store, the app must be running (it serves the store).`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const config = loadConfig();
  if (command === 'reconcile') {
    const { values } = parseArgs({ args: rest, options: { apply: { type: 'boolean', default: false } } });
    const db = openDatabase(path.join(config.dataDir, 'gallery.db'));
    try {
      const storage = createStorage(await storageOptions(config));
      const services = createServices({ db, storage, clock: systemClock, config });
      printReport(await services.reconcile.run({ apply: values.apply ?? false }));
    } finally {
      db.close();
    }
    return 0;
  }
  console.error(`Unknown command: ${command}\n\n${USAGE}`);
  return 2;
}

function printReport(r: ReconcileReport): void {
  const verb = r.apply ? '' : ' (dry run: would be)';
  const lines: [string, string[]][] = [
    ['Pending uploads completed', r.completed],
    ['Outside uploads imported', r.imported],
    ['Not images, removed', r.rejected],
    ['Expired pending uploads dropped', r.expired],
    ['Orphaned objects deleted', r.orphansDeleted],
    ['Failed deletes retried', r.retriedDeletes],
    ['Deletes still failing', r.stillFailing],
  ];
  for (const [label, keys] of lines) {
    console.log(`${label}${keys.length && label !== 'Deletes still failing' ? verb : ''}: ${keys.length}`);
    for (const key of keys.slice(0, 50)) console.log(`  ${key}`);
    if (keys.length > 50) console.log(`  … and ${keys.length - 50} more`);
  }
  if (!r.apply) console.log('\nNothing was changed. Run again with --apply to act.');
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(`s3-gallery: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
