/** What a post that claimed a prefix reports once its write has ended. */
export interface PrefixClaim {
  /** the file is stored: the prefix stays its key's until the policy expires */
  stored(): void;
  /** nothing was stored: the claim goes once no post of its key is on its way and none stored it */
  failed(): void;
}

interface Held {
  key: string;
  until: number;
  /** posts of this key on their way */
  writing: number;
  /** whether one of them stored the file */
  isStored: boolean;
}

/**
 * The one key each form prefix holds, for a store that keeps a `${filename}` form to one file: S3
 * lets a policy whose key condition is `starts-with` store any number of keys under its prefix
 * until it expires. An app that treats each such prefix as one upload (one file, one quota
 * reservation) opts in: the prefix's first post claims it for its key until the policy expires;
 * a post with another name is refused (the same name replaces the file, as a fixed key would).
 * Kept in memory: a restart forgets the claims, as it forgets nothing stored.
 */
export class FormPrefixes {
  private readonly held = new Map<string, Held>();
  private nextPrune = 0;

  /** Claims `prefix` for `key` until `until` (ms); null when another key holds it. */
  claim(prefix: string, key: string, until: number, now: number): PrefixClaim | null {
    this.prune(now);
    const current = this.held.get(prefix);
    const live = current && (current.until > now || current.writing > 0) ? current : undefined;
    if (live && live.key !== key) return null;
    const held: Held = live ?? { key, until, writing: 0, isStored: false };
    held.until = Math.max(held.until, until);
    held.writing++;
    this.held.set(prefix, held);
    let ended = false;
    const end = (isStored: boolean) => {
      if (ended) return;
      ended = true;
      held.writing--;
      held.isStored ||= isStored;
      // Nothing is stored under its key and no post of it is on its way: another name may come.
      if (held.writing === 0 && !held.isStored && this.held.get(prefix) === held) this.held.delete(prefix);
    };
    return { stored: () => end(true), failed: () => end(false) };
  }

  /** Claims whose policies have expired and whose posts have ended go, at most once a minute. */
  private prune(now: number): void {
    if (now < this.nextPrune) return;
    for (const [prefix, held] of this.held)
      if (held.until <= now && held.writing === 0) this.held.delete(prefix);
    this.nextPrune = now + 60_000;
  }
}
