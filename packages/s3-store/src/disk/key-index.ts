export interface IndexEntry {
  size: number;
  etag: string;
  lastModified: number;
}

const HIGH_UNITS = /[\ud800-\uffff]/;

/**
 * Compares keys as their UTF-8 bytes compare, which is how S3 lists them, without encoding them:
 * sorting 100,000 keys makes millions of comparisons. UTF-16 order agrees with UTF-8 order except
 * between a surrogate (part of a character above U+FFFF) and U+E000-U+FFFF, so only strings that
 * both hold such units need the slow path.
 */
export function byteOrder(a: string, b: string): number {
  if (a === b) return 0;
  if (HIGH_UNITS.test(a) && HIGH_UNITS.test(b)) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a.charCodeAt(i);
      const y = b.charCodeAt(i);
      if (x !== y) return codePointRank(x) - codePointRank(y);
    }
    return a.length - b.length;
  }
  return a < b ? -1 : 1;
}

/** Moves surrogates above U+E000-U+FFFF, where the characters they encode sort. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

/**
 * Every key in memory, in S3's listing order, with what a listing shows of it. It is built once by
 * a scan of the disk at start-up while writes go on: a key written or deleted during the scan keeps
 * what the write did, whatever the scan read of it.
 */
export class KeyIndex {
  private readonly entries = new Map<string, IndexEntry>();
  private sorted: string[] = [];
  private readonly touchedDuringScan = new Set<string>();
  private isScanning = false;

  /** Runs `scan`, which reports each object it reads with `found`; then sorts. */
  async build(scan: (found: (key: string, entry: IndexEntry) => void) => Promise<void>): Promise<void> {
    this.isScanning = true;
    try {
      await scan((key, entry) => {
        if (!this.touchedDuringScan.has(key)) this.entries.set(key, entry);
      });
      this.sorted = [...this.entries.keys()].sort(byteOrder);
    } finally {
      this.isScanning = false;
      this.touchedDuringScan.clear();
    }
  }

  set(key: string, entry: IndexEntry): void {
    if (this.isScanning) this.touchedDuringScan.add(key);
    if (!this.entries.has(key)) this.sorted.splice(this.position(key), 0, key);
    this.entries.set(key, entry);
  }

  delete(key: string): void {
    if (this.isScanning) this.touchedDuringScan.add(key);
    if (this.entries.delete(key)) {
      const i = this.position(key);
      if (this.sorted[i] === key) this.sorted.splice(i, 1);
    }
  }

  /** Where key is, or would go, in the sorted keys. */
  private position(key: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (byteOrder(this.sorted[mid] as string, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Keys in UTF-8 byte order, as S3 lists them; keys sharing a delimited prefix roll up into it. */
  list(o: { prefix: string; startAfter: string; maxKeys: number; delimiter: string }) {
    const from = byteOrder(o.prefix, o.startAfter) > 0 ? o.prefix : o.startAfter;
    const contents: ({ key: string } & IndexEntry)[] = [];
    const prefixes: string[] = [];
    let last = '';
    let isTruncated = false;
    for (let i = this.position(from); i < this.sorted.length; i++) {
      const key = this.sorted[i] as string;
      if (key === o.startAfter) continue;
      if (!key.startsWith(o.prefix)) break;
      if (contents.length + prefixes.length >= o.maxKeys) {
        isTruncated = true;
        break;
      }
      const cut = o.delimiter ? key.indexOf(o.delimiter, o.prefix.length) : -1;
      if (cut >= 0) {
        const common = key.slice(0, cut + o.delimiter.length);
        if (prefixes.at(-1) !== common) prefixes.push(common);
        // Skip the rest of this common prefix.
        while (i + 1 < this.sorted.length && (this.sorted[i + 1] as string).startsWith(common)) i++;
        last = this.sorted[i] as string;
        continue;
      }
      const entry = this.entries.get(key);
      if (entry) contents.push({ key, ...entry });
      last = key;
    }
    return { contents, prefixes, isTruncated, last };
  }
}
