import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// Undeclared and unused dependencies, files and exports are knip's job (`npm run knip`, part of
// `npm test`); this checks what knip does not: which way imports cross the workspace boundary.

/** Every TypeScript file under dir. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name))
    .map((e) => path.join(e.parentPath, e.name));
}

/** The files a file imports by relative path, as paths from the repository root. */
function relativeImports(file: string): string[] {
  return ts
    .preProcessFile(readFileSync(file, 'utf8'), true, false)
    .importedFiles.map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => path.relative('.', path.resolve(path.dirname(file), spec)));
}

describe('the workspace boundary', () => {
  it('the app reaches the store only by its package name, except tests borrowing its test support', () => {
    const crossing = ['src', 'scripts', 'test'].flatMap(filesUnder).flatMap((file) =>
      relativeImports(file)
        .filter((target) => target.startsWith('packages/'))
        .filter((target) => !(file.startsWith('test/') && target.startsWith('packages/s3-store/test/')))
        .map((target) => `${file} -> ${target}`),
    );
    expect(crossing).toEqual([]);
  });

  it('the store never imports the app', () => {
    const root = 'packages/s3-store';
    const crossing = ['src', 'test', 'bench']
      .flatMap((dir) => filesUnder(path.join(root, dir)))
      .flatMap((file) =>
        relativeImports(file)
          .filter((target) => !target.startsWith(root))
          .map((target) => `${file} -> ${target}`),
      );
    expect(crossing).toEqual([]);
  });
});
