import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/** Every file under dir whose name ends in one of exts. */
function filesUnder(dir: string, exts: string[]): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && exts.some((x) => e.name.endsWith(x)))
    .map((e) => path.join(e.parentPath, e.name));
}

/** The package a bare import names: "@scope/name" or "name", without a subpath. */
const packageOf = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

describe('dependencies', () => {
  // Each workspace declares what its own files import; the app reaches the store only by its name.
  it.each([
    { root: '.', dirs: ['src', 'test', 'scripts'] },
    { root: 'packages/s3-store', dirs: ['src', 'test'] },
  ])('declares in $root/package.json every package its code imports', ({ root, dirs }) => {
    const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string>
    >;
    const declared = new Set([
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.devDependencies ?? {}),
    ]);
    const builtins = new Set(builtinModules);
    const missing = new Set<string>();
    for (const file of dirs.flatMap((d) => filesUnder(path.join(root, d), ['.ts', '.tsx']))) {
      const text = readFileSync(file, 'utf8');
      // TypeScript's own scanner finds static and dynamic imports; require() calls are matched by
      // name and kept only when they name an installed package (the store has a local "require").
      const imported = ts.preProcessFile(text, true, false).importedFiles.map((f) => f.fileName);
      const required = [...text.matchAll(/\brequire(?:\.resolve)?\('([^']+)'\)/g)]
        .map((m) => m[1] as string)
        .filter((spec) => existsSync(path.join('node_modules', packageOf(spec), 'package.json')));
      const specifiers = [...imported, ...required].filter((spec) => !spec.startsWith('.'));
      for (const spec of specifiers) {
        if (spec.startsWith('node:') || builtins.has(spec)) continue;
        if (!declared.has(packageOf(spec))) missing.add(`${packageOf(spec)} (${file})`);
      }
      // The store's own code never reaches into the app, and the app's code only uses the store's entry points.
      for (const spec of imported.filter((spec) => spec.startsWith('.'))) {
        const target = path.relative('.', path.resolve(path.dirname(file), spec));
        const crosses =
          root === '.'
            ? target.startsWith('packages/s3-store/src') && !file.startsWith('test/')
            : !target.startsWith(root);
        if (crosses) missing.add(`${spec} (${file}: crosses a package boundary)`);
      }
    }
    expect([...missing]).toEqual([]);
  });
});
