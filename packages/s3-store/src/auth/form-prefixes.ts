/**
 * The one key each form prefix holds, for a store that keeps a `${filename}` form to one file: S3
 * lets a policy whose key condition is `starts-with` store any number of keys under its prefix
 * until it expires. An app that treats each such prefix as one upload (one file, one quota
 * reservation) opts in: the prefix's first post claims it for its key until the policy expires;
 * a post with another name is refused (the same name replaces the file, as a fixed key would).
 * Kept in memory: a restart forgets the claims, as it forgets nothing stored.
 */
export class FormPrefixes {
  private readonly held = new Map<string, { key: string; until: number }>();
  private nextPrune = 0;

  /**
   * Claims `prefix` for `key` until `until` (ms). Null when another key holds it; else what undoes
   * this claim if the write fails (nothing, when the key held it already: its file is still there).
   */
  claim(prefix: string, key: string, until: number, now: number): (() => void) | null {
    this.prune(now);
    const held = this.held.get(prefix);
    if (held && held.until > now) {
      if (held.key !== key) return null;
      held.until = Math.max(held.until, until);
      return () => {};
    }
    const claim = { key, until };
    this.held.set(prefix, claim);
    return () => {
      if (this.held.get(prefix) === claim) this.held.delete(prefix);
    };
  }

  /** Claims whose policies have expired go, at most once a minute (each claim is one live policy's). */
  private prune(now: number): void {
    if (now < this.nextPrune) return;
    for (const [prefix, held] of this.held) if (held.until <= now) this.held.delete(prefix);
    this.nextPrune = now + 60_000;
  }
}
