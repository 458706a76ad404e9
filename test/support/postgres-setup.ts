import { afterAll } from 'vitest';
import { dropPostgresOfThisFile } from './postgres.js';

// The postgres project's setup file: the databases a test file's apps shared go when the file ends.
afterAll(dropPostgresOfThisFile);
