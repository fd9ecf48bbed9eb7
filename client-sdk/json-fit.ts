/**
 * Why `value` cannot reach the hub as it is, naming where, or undefined when it can. JSON.stringify
 * writes NaN and ±Infinity as null without a word (an agent's result stored with null in place of
 * its number), and throws a bare TypeError at a BigInt or a cycle. Objects with a toJSON (a Date)
 * are taken as they serialise, and binary data as socket.io sends it (an attachment), unread.
 */
export function whyNotJson(value: unknown): string | undefined {
  const found = check(value, []);
  if (!found) return undefined;
  // The path is put together only now: a big result is walked without a string per item.
  let where = '';
  for (let i = found.path.length - 1; i >= 0; i--) {
    const step = found.path[i]!;
    where += typeof step === 'number' ? `[${step}]` : where ? `.${step}` : step;
  }
  return `${where || 'the payload'} ${found.why}`;
}

/**
 * Levels of arrays and objects a payload may nest. The hub takes 16 in a value (an input, a result),
 * so a deeper payload is refused anyway; past a few thousand, walking or sending it overflowed the
 * stack (a bare RangeError) instead.
 */
const MAX_DEPTH = 64;

/** What is wrong, and the keys leading to it from the innermost out. */
interface Found {
  why: string;
  path: Array<string | number>;
}

function check(value: unknown, ancestors: object[]): Found | undefined {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? undefined : { why: `is ${value}, which JSON cannot hold (it would arrive as null)`, path: [] };
    case 'bigint':
      return { why: 'is a BigInt, which JSON cannot hold', path: [] };
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value === null || typeof (value as { toJSON?: unknown }).toJSON === 'function' || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return undefined;
  if (ancestors.includes(value)) return { why: 'refers back to a value that holds it: JSON cannot hold a cycle', path: [] };
  if (ancestors.length === MAX_DEPTH) return { why: `is nested deeper than ${MAX_DEPTH} levels of arrays and objects (the hub takes 16 in a value)`, path: [] };
  ancestors.push(value);
  let found: Found | undefined;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length && !found; index++) {
      found = check(value[index], ancestors);
      found?.path.push(index);
    }
  } else {
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      found = check((value as Record<string, unknown>)[key], ancestors);
      if (found) {
        found.path.push(key);
        break;
      }
    }
  }
  ancestors.pop();
  return found;
}
