import * as z from 'zod';

/**
 * Names of Object.prototype members (`__proto__`, `constructor`, `toString`, …). No client-chosen
 * id or key may be one: ids and names become keys of the state (a workflow, a work order, a
 * stage, a metadata key), and a lookup by such a key would find the prototype's member instead of
 * nothing. One rule for every id and key, so no code path has to remember which are safe.
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__']);

const RESERVED = 'this name is reserved (it is a member of every JavaScript object)';

/** The one rule for client-chosen ids and keys: refuses the names in RESERVED_KEYS. */
function unreserved<S extends z.ZodType<string>>(schema: S): S {
  return schema.refine((name) => !RESERVED_KEYS.has(name), { message: RESERVED }) as S;
}

/** A free-form name used as a key in the state: trimmed, 1..max characters, not a reserved key. */
export function keyName(max: number) {
  return unreserved(z.string().trim().min(1).max(max));
}

/** Identifiers: letters, digits and `_ . : -`, up to 64 characters, not a reserved key; safe in paths and URLs. */
export const Id = unreserved(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'ids are 1-64 characters of letters, digits, _ . : - starting with a letter or digit'),
);
export type Id = z.infer<typeof Id>;

/**
 * Refuses an own `__proto__` key (JSON.parse makes one) before zod's record parsing, which
 * skips that key without a word; every other reserved key meets the record's key schema.
 */
function refuseProtoKey<T>(value: T, ctx: z.RefinementCtx): T {
  if (value !== null && typeof value === 'object' && Object.hasOwn(value, '__proto__')) {
    ctx.addIssue({ code: 'custom', message: RESERVED, path: ['__proto__'], input: value });
  }
  return value;
}

/**
 * A record keyed by client-chosen names: `key` should be keyName or Id, and `__proto__` is refused
 * too. Give it a default with `.prefault({})`: the JSON Schema drops a `.default` behind a preprocess.
 */
export function keyedRecord<K extends z.ZodType<string>, V extends z.ZodType>(key: K, value: V) {
  const record = z.record(key, value);
  return z.preprocess((input: z.input<typeof record>, ctx) => refuseSameKeys(key, refuseProtoKey(input, ctx), ctx), record);
}

/**
 * Refuses two keys that the key schema makes one (keyName trims: `"a"` and `" a"`), where the
 * record's parse would keep the last value and drop the other without a word.
 */
function refuseSameKeys<T>(key: z.ZodType<string>, value: T, ctx: z.RefinementCtx): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const seen = new Map<string, string>();
  for (const name of Object.keys(value)) {
    const parsed = key.safeParse(name);
    if (!parsed.success) continue;
    const earlier = seen.get(parsed.data);
    if (earlier !== undefined) {
      ctx.addIssue({ code: 'custom', message: `keys ${JSON.stringify(earlier)} and ${JSON.stringify(name)} are the same key once trimmed`, path: [name], input: value });
    }
    seen.set(parsed.data, name);
  }
  return value;
}

/** Milliseconds since the Unix epoch, as the hub's clock saw it. */
export const Timestamp = z.number().int().nonnegative();

/** A one-line name. */
export const Name = z.string().trim().min(1).max(200);

/** Free text such as a description or a reason. */
export const Text = z.string().max(10_000);

/** Priority of objectives and work orders, lowest first. */
export const Priority = z.enum(['low', 'normal', 'high', 'critical']);
export type Priority = z.infer<typeof Priority>;

/** A percentage, 0 to 100 inclusive. */
export const Percentage = z.number().min(0).max(100);

const MAX_DEPTH = 16;

/** Measures a JSON value: its serialised size in bytes and nesting depth, or why it is not JSON. */
function measureJson(value: unknown, depth: number, budget: { bytes: number }): string | null {
  if (depth > MAX_DEPTH) return `nesting deeper than ${MAX_DEPTH} levels`;
  if (value === null || typeof value === 'boolean') {
    budget.bytes -= 5;
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) return 'numbers must be finite';
    budget.bytes -= 8;
  } else if (typeof value === 'string') {
    budget.bytes -= value.length + 2;
  } else if (Array.isArray(value)) {
    budget.bytes -= 2;
    for (const item of value) {
      const problem = measureJson(item, depth + 1, budget);
      if (problem) return problem;
      if (budget.bytes < 0) return null;
    }
  } else if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return 'only plain JSON objects are allowed';
    budget.bytes -= 2;
    for (const [key, item] of Object.entries(value)) {
      if (key === '__proto__') return 'the key __proto__ is not allowed';
      budget.bytes -= key.length + 3;
      const problem = measureJson(item, depth + 1, budget);
      if (problem) return problem;
      if (budget.bytes < 0) return null;
    }
  } else {
    return `${typeof value} is not a JSON value`;
  }
  return null;
}

/** A zod refinement that bounds a JSON value's size and depth and rejects what is not JSON. */
function jsonWithin(maxBytes: number, label: string) {
  return (value: unknown, ctx: z.RefinementCtx) => {
    if (value === undefined) return;
    const budget = { bytes: maxBytes };
    const problem = measureJson(value, 0, budget);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
    else if (budget.bytes < 0) ctx.addIssue({ code: 'custom', message: `${label} larger than ${maxBytes} bytes` });
  };
}

/** Any JSON value up to `maxBytes` (approximate serialised size) and 16 levels of nesting. */
export function boundedJson(maxBytes: number, label = 'value') {
  return z.unknown().superRefine(jsonWithin(maxBytes, label));
}

/** Free metadata: a JSON object up to 16 KiB. */
export const Metadata = keyedRecord(keyName(200), z.unknown()).superRefine(jsonWithin(16_384, 'metadata'));
export type Metadata = z.infer<typeof Metadata>;

/** The attempt an agent's message is about; the token proves it still holds the work. */
export const AttemptRef = { workflowId: Id, workOrderId: Id, attemptToken: z.string().min(1).max(100) };

/** Pagination of list requests. */
export const Page = {
  limit: z.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(200).optional(),
};
