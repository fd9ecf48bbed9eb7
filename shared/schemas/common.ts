import * as z from 'zod';

/**
 * Names of Object.prototype members (`__proto__`, `constructor`, `toString`, …). No client-chosen
 * id or key may be one: ids and names become keys of the state (a workflow, a work order, a
 * stage, a metadata key), and a lookup by such a key would find the prototype's member instead of
 * nothing. One rule for every id and key, so no code path has to remember which are safe.
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__']);

const RESERVED = 'this name is reserved (it is a member of every JavaScript object)';

/** RESERVED_KEYS as regex alternatives, for the JSON Schema's patterns (which have no other way to refuse them). */
const RESERVED_ALTERNATIVES = [...RESERVED_KEYS]
  .sort()
  .map((name) => name.replace(/[$()*+.?[\\\]^{|}]/g, '\\$&'))
  .join('|');

/** The one rule for client-chosen ids and keys: refuses the names in RESERVED_KEYS. */
function unreserved<S extends z.ZodType<string>>(schema: S): S {
  return schema.refine((name) => !RESERVED_KEYS.has(name), { message: RESERVED }) as S;
}

/** A free-form name used as a key in the state: trimmed, 1..max characters, not a reserved key. */
export function keyName(max: number) {
  // The JSON Schema's form of the trim: 1..max characters between blanks, not reserved; its maxLength
  // would bound the blanks too, which the hub trims first.
  const between = max > 1 ? `(?:[\\s\\S]{0,${max - 2}}\\S)?` : '';
  return unreserved(z.string().trim().min(1).max(max)).meta({
    pattern: `^(?!\\s*(?:${RESERVED_ALTERNATIVES})\\s*$)\\s*\\S${between}\\s*$`,
    maxLength: undefined,
  });
}

/** Identifiers: letters, digits and `_ . : -`, up to 64 characters, not a reserved key; safe in paths and URLs. */
export const Id = unreserved(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'ids are 1-64 characters of letters, digits, _ . : - starting with a letter or digit'),
).meta({ pattern: `^(?!(?:${RESERVED_ALTERNATIVES})$)[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$` });
export type Id = z.infer<typeof Id>;

/** Issues a keyed record's check lists at most: the hub's answers list no more (MAX_ISSUES). */
const MAX_RECORD_ISSUES = 100;

/**
 * A record keyed by client-chosen names: `key` should be keyName or Id, and `__proto__` is refused
 * too. With `bound`, its size as JSON is bounded too (see boundedJson). Give it a default with
 * `.prefault({})`: the JSON Schema drops a `.default` behind a preprocess.
 */
export function keyedRecord<K extends z.ZodType<string>, V extends z.ZodType>(key: K, value: V, bound?: { maxBytes: number; label: string }) {
  const record = z.record(key, value);
  // zod's compiled fast path: a few times cheaper per entry than its parser, which it falls back to
  // for a value it refuses (the record's own parse, not this check, decides what is accepted).
  // Compiled at first use, not at import: the SDK, in a browser too, imports the schemas but parses
  // nothing, and a strict CSP reports every `new Function`.
  let fast: { key: z.ZodType<string>; value: z.ZodType } | undefined;
  const compiled = () => (z.config().jitless ? { key, value } : { key: z.compile(key), value: z.compile(value) });
  return z
    .preprocess((input: z.input<typeof record>, ctx) => {
      fast ??= compiled();
      return checkEntries(fast.key, fast.value, bound, input, ctx);
    }, record)
    .meta({ description: 'Keys are names as the hub keeps them: two keys that are the same once trimmed are refused, as is __proto__.' });
}

/**
 * Checks a keyed record's entries before zod's record parse, which goes through every entry
 * whatever it finds: a record of 100,000 wrong keys or values under maxHttpBufferSize held the
 * hub's loop for a second. Stops at the first MAX_RECORD_ISSUES issues (an issue here ends the
 * parse). Refuses an own `__proto__` key (JSON.parse makes one), which the record parse skips
 * without a word, and two keys that the key schema makes one (keyName trims: `"a"` and `" a"`),
 * where the record parse would keep the last value and drop the other.
 */
function checkEntries<T>(key: z.ZodType<string>, value: z.ZodType, bound: { maxBytes: number; label: string } | undefined, input: T, ctx: z.RefinementCtx): T {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  if (Object.hasOwn(input, '__proto__')) {
    ctx.addIssue({ code: 'custom', message: RESERVED, path: ['__proto__'], input });
    return input;
  }
  // Its size first: a 1 MB record over a 16 KB bound is refused before its keys are parsed. Its keys
  // are measured trimmed, as the record keeps them.
  if (bound && !jsonWithin(bound.maxBytes, bound.label, true)(input, ctx)) return input;
  let issues = 0;
  const seen = new Map<string, string>();
  for (const name of Object.keys(input)) {
    const item = (input as Record<string, unknown>)[name];
    const parsed = key.safeParse(name);
    if (!parsed.success) {
      // zod's own words for it, with why (which zod kept nested, out of the answer).
      ctx.addIssue({ code: 'custom', message: `Invalid key in record: ${parsed.error.issues[0]?.message ?? 'refused'}`, path: [name], input });
      if (++issues >= MAX_RECORD_ISSUES) break;
      continue;
    }
    const earlier = seen.get(parsed.data);
    if (earlier !== undefined) {
      ctx.addIssue({ code: 'custom', message: `keys ${JSON.stringify(earlier)} and ${JSON.stringify(name)} are the same key once trimmed`, path: [name], input });
      if (++issues >= MAX_RECORD_ISSUES) break;
    }
    seen.set(parsed.data, name);
    const checked = value.safeParse(item);
    if (checked.success) continue;
    for (const issue of checked.error.issues) {
      ctx.addIssue({ code: 'custom', message: issue.message, path: [name, ...issue.path], input });
      if (++issues >= MAX_RECORD_ISSUES) break;
    }
    if (issues >= MAX_RECORD_ISSUES) break;
  }
  return input;
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

/** A string JSON writes as it is (printable ASCII but `"` and `\`): its size is its length. */
const PLAIN_JSON = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** The size in UTF-8 bytes of a string as JSON writes it: quotes, escapes and all. */
export function jsonStringBytes(text: string): number {
  if (PLAIN_JSON.test(text)) return text.length + 2;
  let bytes = 2;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 || c === 0x5c || c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d) bytes += 2;
    else if (c < 0x20) bytes += 6;
    else if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    }
    // A lone surrogate is written as \uXXXX.
    else if (c >= 0xd800 && c <= 0xdfff) bytes += 6;
    else bytes += 3;
  }
  return bytes;
}

/**
 * Measures a JSON value: takes its serialised size in UTF-8 bytes (as JSON.stringify writes it)
 * from `budget`, stopping once that is spent, and checks its nesting depth; or says why it is not JSON.
 * With `trimKeys`, the keys of the value itself count trimmed (not those of the values it holds).
 */
function measureJson(value: unknown, depth: number, budget: { bytes: number }, trimKeys = false): string | null {
  // `depth` is how many arrays and objects hold this value: one more array or object is a level past the bound.
  const tooDeep = depth >= MAX_DEPTH ? `nesting deeper than ${MAX_DEPTH} levels of arrays and objects` : null;
  if (value === null || value === true) {
    budget.bytes -= 4;
  } else if (value === false) {
    budget.bytes -= 5;
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) return 'numbers must be finite';
    budget.bytes -= String(value).length;
  } else if (typeof value === 'string') {
    budget.bytes -= jsonStringBytes(value);
  } else if (Array.isArray(value)) {
    if (tooDeep) return tooDeep;
    // Brackets, and a comma between items.
    budget.bytes -= value.length === 0 ? 2 : value.length + 1;
    for (const item of value) {
      const problem = measureJson(item, depth + 1, budget);
      if (problem) return problem;
      if (budget.bytes < 0) return null;
    }
  } else if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return 'only plain JSON objects are allowed';
    if (tooDeep) return tooDeep;
    // The braces, then a comma before each entry but the first; for-in, not Object.entries: that
    // would copy every entry of a wide object before the budget is spent.
    budget.bytes -= 1;
    let first = true;
    for (const key in value) {
      if (key === '__proto__') return 'the key __proto__ is not allowed';
      // The key and its colon, and a comma before it or the closing brace after the first.
      budget.bytes -= jsonStringBytes(trimKeys ? key.trim() : key) + 2;
      first = false;
      const problem = measureJson((value as Record<string, unknown>)[key], depth + 1, budget);
      if (problem) return problem;
      if (budget.bytes < 0) return null;
    }
    if (first) budget.bytes -= 1;
  } else {
    return `${typeof value} is not a JSON value`;
  }
  return null;
}

/** A zod refinement that bounds a JSON value's size and depth and rejects what is not JSON; true when the value passed. */
function jsonWithin(maxBytes: number, label: string, trimKeys = false) {
  return (value: unknown, ctx: z.RefinementCtx): boolean => {
    if (value === undefined) return true;
    const budget = { bytes: maxBytes };
    const problem = measureJson(value, 0, budget, trimKeys) ?? (budget.bytes < 0 ? `${label} larger than ${maxBytes} bytes` : null);
    if (problem === null) return true;
    // continue: false, so that an array of such values stops at the first (see checkPayload).
    ctx.addIssue({ code: 'custom', message: problem, input: value, continue: false });
    return false;
  };
}

/** Any JSON value up to `maxBytes` (its size as JSON, in UTF-8 bytes) and 16 levels of nesting. */
export function boundedJson(maxBytes: number, label = 'value') {
  return z
    .unknown()
    .superRefine((value, ctx) => void jsonWithin(maxBytes, label)(value, ctx))
    .meta({ description: `Any JSON value up to ${maxBytes} bytes as JSON (UTF-8), nested at most ${MAX_DEPTH} levels of arrays and objects.` });
}

/** Free metadata: a JSON object up to 16 KiB. */
export const Metadata = keyedRecord(keyName(200), z.unknown(), { maxBytes: 16_384, label: 'metadata' });
export type Metadata = z.infer<typeof Metadata>;

/** The attempt an agent's message is about; the token proves it still holds the work. */
export const AttemptRef = { workflowId: Id, workOrderId: Id, attemptToken: z.string().min(1).max(100) };

/** Pagination of list requests. */
export const Page = {
  limit: z.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(200).optional(),
};
