import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * The stylesheet is written by hand and merged from several pieces of work: a rule left open
 * swallows every rule after it, which no other test notices until a browser test of a later rule
 * fails. Braces must balance outside comments and strings, and never go below zero.
 */
describe('public/css/app.css', () => {
  it('closes every block it opens', () => {
    const css = readFileSync('public/css/app.css', 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
    let depth = 0;
    for (const [i, line] of css.split('\n').entries()) {
      for (const ch of line) {
        if (ch === '{') depth++;
        if (ch === '}') depth--;
        expect(depth, `line ${i + 1} (comments removed)`).toBeGreaterThanOrEqual(0);
      }
    }
    expect(depth).toBe(0);
  });
});
