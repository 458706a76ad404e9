/** One line of the bench's table, and the arithmetic its figures share. */
export interface Row {
  measure: string;
  ours: string;
  baseline: string;
  ratio: string;
  target: string;
  met?: boolean;
}

export const fmt = (n: number, digits = 1) => n.toFixed(digits);
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
export const percent = (share: number) => `${fmt(share * 100, 0)}%`;

/** The nearest-rank percentile: with 20 samples, p99 is the slowest. */
export function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}
