import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const store = (file: string) => fileURLToPath(new URL(`packages/s3-store/src/${file}`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run the workspace package from its sources, as tsconfig.json's "source" condition does.
    alias: [
      { find: /^@s3-gallery\/s3-store$/, replacement: store('index.ts') },
      { find: /^@s3-gallery\/s3-store\/disk$/, replacement: store('disk/objects.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx', 'packages/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Browser and server tests each bind their own loopback ports; two cores run two files at once.
    pool: 'forks',
    maxWorkers: 2,
  },
});
