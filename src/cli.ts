#!/usr/bin/env node
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Config, ConfigError, loadConfig } from './config.js';
import { BackupError, backupDatabase } from './db/backup.js';
import { CopyError, copyToPostgres } from './db/copy.js';
import { connectDatabase, databaseTarget } from './db/database.js';
import { countOf, formatBytes } from './format.js';
import { appIamPolicy, corsConfiguration, userIamPolicy } from './services/bucket-policies.js';
import { systemClock } from './services/clock.js';
import { runDoctor } from './services/doctor.js';
import { DomainError, NotFound } from './services/errors.js';
import { createServices, type Services } from './services/index.js';
import { parseRole } from './services/invites.js';
import type { ReconcileReport } from './services/reconcile.js';
import { randomToken } from './services/tokens.js';
import { EMBEDDED_BUCKET, storageOptions } from './storage/embedded.js';
import { createStorage } from './storage/s3.js';

const USAGE = `Usage: s3-gallery <command> [options]

Commands:
  user:create --email <email> --role <admin|member|viewer> [--password-stdin]
                        Create an account (no invite needed). Prints a generated password unless
                        one is read from standard input.
  user:reset-password --email <email> [--password-stdin]
                        Set a new password and sign the account out everywhere.
  doctor                Check the configuration, database and bucket; prints a fix for each problem.
  print:iam-policy [--user <id>]
                        The least-privilege AWS IAM policy for the app, or with --user for an outside
                        uploader limited to users/<id>/.
  print:cors            The bucket CORS configuration for APP_ORIGIN (for aws s3api put-bucket-cors).
  reconcile [--apply]   Bring the database and the bucket back into agreement (dry run without --apply).
  backup <file>         A consistent copy of the SQLite database, safe while the app runs (never
                        replaces an existing file). Back up the bucket separately.
  db:copy --to <postgres://user:password@host/database>
                        Copy the SQLite database (safe while the app runs) into an empty PostgreSQL
                        database, and check the row counts of every table.

With the embedded store, doctor and reconcile need the app running: it serves the store.`;

type Handler = (config: Config, args: string[]) => Promise<number>;

const commands: Record<string, Handler> = {
  async 'user:create'(config, args) {
    const { values } = parseArgs({
      args,
      options: { email: { type: 'string' }, role: { type: 'string' }, 'password-stdin': { type: 'boolean' } },
    });
    const role = parseRole(values.role);
    const { password, generated } = await newPassword(values['password-stdin']);
    return withServices(config, async (services) => {
      const user = await services.users.create({ email: values.email ?? '', password, role });
      console.log(`Created ${user.email} (${user.role}), id ${user.id}.`);
      if (generated)
        console.log(`Password: ${password}\nIt is shown only now; ask them to change it after logging in.`);
      return 0;
    });
  },

  async 'user:reset-password'(config, args) {
    const { values } = parseArgs({
      args,
      options: { email: { type: 'string' }, 'password-stdin': { type: 'boolean' } },
    });
    const { password, generated } = await newPassword(values['password-stdin']);
    return withServices(config, async (services) => {
      const user = await services.users.findByEmail(values.email ?? '');
      if (!user) throw new NotFound(`There is no account with the email address "${values.email ?? ''}".`);
      await services.users.setPassword(user, password);
      console.log(`New password set for ${user.email}; every session of theirs has ended.`);
      if (generated) console.log(`Password: ${password}`);
      return 0;
    });
  },

  async doctor(config) {
    const storage = createStorage(await storageOptions(config));
    const results = await runDoctor(config, storage);
    for (const r of results) {
      if (r.ok) console.log(`ok    ${r.name}${r.detail ? ` (${r.detail})` : ''}`);
      else console.log(`FAIL  ${r.name}: ${r.detail ?? ''}\n      fix: ${r.fix ?? ''}`);
    }
    const failed = results.filter((r) => !r.ok).length;
    console.log(failed ? `\n${countOf(failed, 'problem')} found.` : '\nAll checks passed.');
    return failed ? 1 : 0;
  },

  async 'print:iam-policy'(config, args) {
    const { values } = parseArgs({ args, options: { user: { type: 'string' } } });
    const bucket = bucketName(config);
    const policy = values.user === undefined ? appIamPolicy(bucket) : userIamPolicy(bucket, values.user);
    console.log(JSON.stringify(policy, null, 2));
    return 0;
  },

  async 'print:cors'(config) {
    bucketName(config);
    console.log(JSON.stringify(corsConfiguration(config.appOrigin), null, 2));
    return 0;
  },

  async backup(config, args) {
    const [target, ...extra] = args;
    if (!target || extra.length > 0) {
      console.error('Usage: s3-gallery backup <file>');
      return 2;
    }
    if (config.database.kind === 'postgres') {
      console.error(
        'DATABASE_URL is set: the metadata is in PostgreSQL, which backs up with its own tools, e.g.\n' +
          `  pg_dump -Fc -f ${target} "$DATABASE_URL"\n` +
          'and restores with pg_restore (see the README, "Backups").',
      );
      return 2;
    }
    try {
      const { bytes, tables } = await backupDatabase(databaseFile(config), path.resolve(target));
      const rows = Object.entries(tables).map(([name, n]) => `${name} ${n}`);
      console.log(`Backed up ${databaseFile(config)} to ${path.resolve(target)} (${formatBytes(bytes)}).`);
      console.log(`Rows: ${rows.join(', ')}`);
      return 0;
    } catch (err) {
      if (!(err instanceof BackupError)) throw err;
      console.error(err.message);
      return 1;
    }
  },

  async 'db:copy'(config, args) {
    const { values, positionals } = parseArgs({
      args,
      options: { to: { type: 'string' } },
      allowPositionals: true,
    });
    if (!values.to || positionals.length > 0) {
      console.error('Usage: s3-gallery db:copy --to postgres://user:password@host:5432/database');
      return 2;
    }
    try {
      const { target, tables } = await copyToPostgres(databaseFile(config), values.to);
      console.log(`Copied ${databaseFile(config)} to ${target}.`);
      const width = Math.max(...tables.map((t) => t.name.length));
      console.log(`${'table'.padEnd(width)}  sqlite  postgres`);
      for (const t of tables)
        console.log(
          `${t.name.padEnd(width)}  ${String(t.source).padStart(6)}  ${String(t.target).padStart(8)}`,
        );
      console.log('Row counts match in every table.');
      return 0;
    } catch (err) {
      if (!(err instanceof CopyError)) throw err;
      console.error(err.message);
      return 1;
    }
  },

  async reconcile(config, args) {
    const { values } = parseArgs({ args, options: { apply: { type: 'boolean', default: false } } });
    return withServices(config, async (services) => {
      printReport(await services.reconcile.run({ apply: values.apply ?? false }));
      return 0;
    });
  },
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const handler = commands[command];
  if (!handler) {
    console.error(`Unknown command: ${command}\n\n${USAGE}`);
    return 2;
  }
  return handler(loadConfig(), rest);
}

const databaseFile = (config: Config) => path.join(config.dataDir, 'gallery.db');

async function withServices(config: Config, work: (services: Services) => Promise<number>): Promise<number> {
  const database = await connectDatabase(databaseTarget(config));
  try {
    const storage = createStorage(await storageOptions(config));
    return await work(createServices({ database, storage, clock: systemClock, config }));
  } finally {
    await database.close();
  }
}

/** The embedded store's bucket has a fixed name; AWS policies only matter for an external bucket. */
function bucketName(config: Config): string {
  if (config.s3) return config.s3.bucket;
  console.error(
    `Note: S3_ENDPOINT is not set, so this is for the embedded store's bucket "${EMBEDDED_BUCKET}".`,
  );
  return EMBEDDED_BUCKET;
}

async function newPassword(
  fromStdin: boolean | undefined,
): Promise<{ password: string; generated: boolean }> {
  if (!fromStdin) return { password: randomToken(15), generated: true };
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return {
    password: Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, ''),
    generated: false,
  };
}

function printReport(r: ReconcileReport): void {
  const verb = r.apply ? '' : ' (dry run: would be)';
  const lines: [string, string[]][] = [
    ['Pending uploads completed', r.completed],
    ['Outside uploads imported', r.imported],
    ['Originals overwritten outside the app, processed again', r.overwritten],
    ['Images whose original is gone, moved to the trash', r.missing],
    ['Not images (or over quota), removed', r.rejected],
    ['Expired pending uploads dropped', r.expired],
    ['Objects of replayed upload links deleted', r.replaysDeleted],
    ['Orphaned objects deleted', r.orphansDeleted],
    ['Failed deletes retried', r.retriedDeletes],
    ['Deletes still failing', r.stillFailing],
  ];
  for (const [label, keys] of lines) {
    console.log(`${label}${keys.length && label !== 'Deletes still failing' ? verb : ''}: ${keys.length}`);
    for (const key of keys.slice(0, 50)) console.log(`  ${key}`);
    if (keys.length > 50) console.log(`  … and ${keys.length - 50} more`);
  }
  if (r.skipped.length > 0) {
    console.log(`Warning: skipped, could not be read (left as they are): ${r.skipped.length}`);
    for (const s of r.skipped.slice(0, 50)) console.log(`  ${s.key}: ${s.reason}`);
    if (r.skipped.length > 50) console.log(`  … and ${r.skipped.length - 50} more`);
  }
  if (!r.apply) console.log('\nNothing was changed. Run again with --apply to act.');
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof ConfigError || err instanceof DomainError) console.error(err.message);
    else console.error(`s3-gallery: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
