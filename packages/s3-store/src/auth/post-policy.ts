import { accessDenied, badRequest } from '../errors.js';

/**
 * S3's POST policy: a base64 JSON document with an expiration and conditions that every form
 * field must satisfy. Field names compare case-insensitively; values exactly.
 */
export interface Policy {
  expiration: Date;
  conditions: Condition[];
}

type Condition =
  | { kind: 'eq'; field: string; value: string; text: string }
  | { kind: 'starts-with'; field: string; value: string; text: string }
  | { kind: 'range'; min: number; max: number };

const STARTS_WITH_ALLOWED =
  /^(key|acl|content-type|cache-control|content-disposition|content-encoding|expires|success_action_redirect|redirect|x-amz-meta-.+)$/;
/** Fields the form may send without a condition naming them. */
const EXEMPT = /^(file|policy|x-amz-signature|x-ignore-.*)$/;

const invalid = (why: string) => badRequest('InvalidPolicyDocument', `Invalid Policy: ${why}`);

export function parsePolicy(base64: string): Policy {
  let doc: unknown;
  try {
    const text = Buffer.from(base64, 'base64').toString('utf8');
    doc = JSON.parse(text);
  } catch {
    throw invalid('Invalid JSON.');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw invalid('Invalid JSON.');
  const { expiration, conditions, ...extra } = doc as Record<string, unknown>;
  if (Object.keys(extra).length > 0) throw invalid('Unexpected policy members.');
  if (typeof expiration !== 'string') throw invalid('Missing expiration.');
  const expiry = new Date(expiration);
  if (Number.isNaN(expiry.getTime())) throw invalid('Invalid expiration.');
  if (!Array.isArray(conditions)) throw invalid('Missing conditions.');
  return { expiration: expiry, conditions: conditions.map(parseCondition) };
}

function parseCondition(raw: unknown): Condition {
  if (Array.isArray(raw)) {
    const [op, a, b] = raw as unknown[];
    if (raw.length !== 3 || typeof op !== 'string') throw invalid('Invalid condition.');
    if (op === 'content-length-range') {
      if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b))
        throw invalid('Invalid content-length-range.');
      return { kind: 'range', min: a as number, max: b as number };
    }
    if (
      (op === 'eq' || op === 'starts-with') &&
      typeof a === 'string' &&
      a.startsWith('$') &&
      typeof b === 'string'
    ) {
      const field = a.slice(1).toLowerCase();
      if (op === 'starts-with' && !STARTS_WITH_ALLOWED.test(field))
        throw invalid(`starts-with is not allowed for ${field}.`);
      return { kind: op, field, value: b, text: JSON.stringify(raw) };
    }
    throw invalid('Invalid condition.');
  }
  if (raw && typeof raw === 'object') {
    const entries = Object.entries(raw);
    const [entry] = entries;
    if (entries.length !== 1 || !entry || typeof entry[1] !== 'string') throw invalid('Invalid condition.');
    return { kind: 'eq', field: entry[0].toLowerCase(), value: entry[1], text: JSON.stringify(raw) };
  }
  throw invalid('Invalid condition.');
}

/**
 * Checks every condition against the form (names lower-cased), and that every field is covered.
 * Returns the size range the file must fall in.
 */
export function checkPolicy(
  policy: Policy,
  form: Map<string, string>,
  now: Date,
): { min: number; max: number } {
  if (now.getTime() >= policy.expiration.getTime())
    throw accessDenied('Invalid according to Policy: Policy expired.');
  const covered = new Set<string>();
  let range = { min: 0, max: Number.MAX_SAFE_INTEGER };
  let hasRange = false;
  for (const c of policy.conditions) {
    if (c.kind === 'range') {
      range = hasRange
        ? { min: Math.max(range.min, c.min), max: Math.min(range.max, c.max) }
        : { min: c.min, max: c.max };
      hasRange = true;
      continue;
    }
    covered.add(c.field);
    const value = form.get(c.field) ?? '';
    const ok = c.kind === 'eq' ? value === c.value : value.startsWith(c.value);
    if (!ok) throw accessDenied(`Invalid according to Policy: Policy Condition failed: ${c.text}`);
  }
  for (const name of form.keys()) {
    if (!EXEMPT.test(name) && !covered.has(name)) {
      throw accessDenied(`Invalid according to Policy: Extra input fields: ${name}`);
    }
  }
  return range;
}
