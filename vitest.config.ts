import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Browser and server tests each bind their own loopback ports; two cores run two files at once.
    pool: 'forks',
    maxWorkers: 2,
  },
});
