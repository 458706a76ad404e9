import { fileURLToPath } from 'node:url';
import { defineConfig, type ViteUserConfig } from 'vitest/config';
import { postgresIsReachable } from './test/support/postgres.js';

const store = (file: string) => fileURLToPath(new URL(`packages/s3-store/src/${file}`, import.meta.url));

/**
 * The service and route suites: every file that builds its app with makeTestApp, which opens the
 * database the project names (TEST_DIALECT). They run on SQLite and again on PostgreSQL. The rest
 * run once: the SQLite file itself (crash, backup, copy, migrations), whole server processes on the
 * embedded store (which needs SQLite's single machine), the store, the browser, and the 15-second
 * load test; multi-instance.test.ts runs on PostgreSQL by itself.
 */
const SERVICE_AND_ROUTE_SUITES = [
  'access-keys',
  'admin',
  'accept-any',
  'album-share-pages',
  'albums',
  'audit',
  'auth',
  'faults',
  'fuzz',
  'guest-links',
  'images',
  'notifications',
  'outside-changes',
  'page-cache',
  'pagination',
  'processing',
  'races',
  'redirects',
  'regressions',
  'roles',
  'security',
  'sharing',
  'throttles',
  'timeline',
  'titles',
  'upload-quotas',
  'upload-faults',
  'upload-parts',
  'upload-replay',
  'upload-sweeper',
  'validation',
  'viewer',
].map((name) => `test/${name}.test.ts`);

export default defineConfig(async (): Promise<ViteUserConfig> => {
  // Without a server the PostgreSQL project is left out, except under CI, where this throws.
  const withPostgres = await postgresIsReachable();
  return {
    resolve: {
      // Tests run the workspace package from its sources, as tsconfig.json's "source" condition does.
      alias: [
        { find: /^@s3-gallery\/s3-store$/, replacement: store('index.ts') },
        { find: /^@s3-gallery\/s3-store\/disk$/, replacement: store('disk/objects.ts') },
      ],
    },
    test: {
      testTimeout: 30_000,
      hookTimeout: 60_000,
      // Browser and server tests each bind their own loopback ports; two cores run two files at once.
      pool: 'forks',
      maxWorkers: 2,
      // Files that run in one worker share its modules: each loads the app (the AWS SDK, sharp,
      // kysely) once, not once a file, which took 174 s of a 726 s run. Every file closes what it
      // opens, and no test changes a module's state; the one process-wide thing a file leaves is
      // threads (HEIC's decoder), which processing.test's thread check takes as they were.
      isolate: false,
      projects: [
        {
          extends: true as const,
          test: {
            name: 'sqlite',
            include: ['test/**/*.test.ts', 'test/**/*.test.tsx', 'packages/*/test/**/*.test.ts'],
          },
        },
        ...(withPostgres
          ? [
              {
                extends: true as const,
                test: {
                  name: 'postgres',
                  include: SERVICE_AND_ROUTE_SUITES,
                  env: { TEST_DIALECT: 'postgres' },
                  setupFiles: ['test/support/postgres-setup.ts'],
                },
              },
            ]
          : []),
      ],
    },
  };
});
