import { describe } from 'vitest';
import { startTestStore } from '../support/store.js';
import { defineStorageSuite } from './suite.js';

describe('the storage wrapper against the embedded store', () => {
  defineStorageSuite(async () => {
    const store = await startTestStore();
    return { storage: store.storage, prefix: 'suite/', close: store.close };
  });
});
