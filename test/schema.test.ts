import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { contract, pushEvents } from '../shared/contract.ts';
import { contractJsonSchema, contractJsonSchemaText, SCHEMA_FILE } from '../shared/json-schema.ts';
import { Id, keyedRecord, keyName, Metadata, RESERVED_KEYS } from '../shared/schemas/common.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The keywords of JSON Schema draft 2020-12 (core, applicator, validation, meta-data, format, content). */
const KEYWORDS = new Set([
  '$schema', '$id', '$ref', '$defs', '$anchor', '$dynamicRef', '$dynamicAnchor', '$vocabulary', '$comment',
  'allOf', 'anyOf', 'oneOf', 'not', 'if', 'then', 'else', 'dependentSchemas', 'prefixItems', 'items', 'contains',
  'properties', 'patternProperties', 'additionalProperties', 'propertyNames', 'unevaluatedItems', 'unevaluatedProperties',
  'type', 'const', 'enum', 'multipleOf', 'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum', 'maxLength',
  'minLength', 'pattern', 'maxItems', 'minItems', 'uniqueItems', 'maxContains', 'minContains', 'maxProperties',
  'minProperties', 'required', 'dependentRequired', 'title', 'description', 'default', 'deprecated', 'readOnly',
  'writeOnly', 'examples', 'format', 'contentEncoding', 'contentMediaType', 'contentSchema',
]);
/** Keywords whose value maps names to schemas, and those whose value is a schema or a list of schemas. */
const SCHEMA_MAPS = new Set(['$defs', 'properties', 'patternProperties', 'dependentSchemas']);
const SCHEMA_VALUES = new Set(['allOf', 'anyOf', 'oneOf', 'not', 'if', 'then', 'else', 'prefixItems', 'items', 'contains', 'additionalProperties', 'propertyNames', 'unevaluatedItems', 'unevaluatedProperties', 'contentSchema']);

/** Walks every subschema; reports keywords outside the 2020-12 vocabulary and `$ref`s that point nowhere. */
function problemsOf(schema: unknown, defs: Record<string, unknown>, where: string, problems: string[]): string[] {
  if (typeof schema === 'boolean') return problems;
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    problems.push(`${where}: not a schema`);
    return problems;
  }
  for (const [keyword, value] of Object.entries(schema)) {
    if (!KEYWORDS.has(keyword)) problems.push(`${where}: unknown keyword ${keyword}`);
    if (keyword === '$ref') {
      const match = /^#\/\$defs\/(.+)$/.exec(String(value));
      if (!match || !Object.hasOwn(defs, match[1]!)) problems.push(`${where}: $ref ${String(value)} resolves to nothing`);
    } else if (SCHEMA_MAPS.has(keyword)) {
      for (const [name, sub] of Object.entries(value as object)) problemsOf(sub, defs, `${where}/${keyword}/${name}`, problems);
    } else if (SCHEMA_VALUES.has(keyword)) {
      const list = Array.isArray(value) ? value : [value];
      list.forEach((sub, i) => problemsOf(sub, defs, `${where}/${keyword}${Array.isArray(value) ? `/${i}` : ''}`, problems));
    }
  }
  return problems;
}

describe('published JSON Schema', () => {
  it(`is committed in ${SCHEMA_FILE} exactly as npm run schema writes it`, () => {
    let committed = '';
    try {
      committed = readFileSync(join(root, SCHEMA_FILE), 'utf8');
    } catch {
      // Reported below as stale.
    }
    if (committed !== contractJsonSchemaText()) {
      expect.fail(`${SCHEMA_FILE} is stale: the contract changed since it was generated; run npm run schema and commit the file`);
    }
  });

  it('has a request and a reply for every event, a payload for every push, and the ack envelope', () => {
    const { $defs } = contractJsonSchema();
    const expected = ['Ack', 'AckError'];
    for (const [namespace, events] of Object.entries(contract)) {
      for (const event of Object.keys(events)) expected.push(`${namespace}:${event}:request`, `${namespace}:${event}:reply`);
    }
    for (const [namespace, events] of Object.entries(pushEvents)) {
      for (const [event, spec] of Object.entries(events as Record<string, { reply: unknown }>)) {
        expected.push(`${namespace}:${event}:payload`, ...(spec.reply ? [`${namespace}:${event}:reply`] : []));
      }
    }
    expect(Object.keys($defs)).toEqual(expect.arrayContaining(expected));
  });

  it('is valid draft 2020-12: known keywords only, every $ref resolves, and an independent reader loads every definition', () => {
    const schema = contractJsonSchema();
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(problemsOf(schema, schema.$defs, '#', [])).toEqual([]);
    for (const key of Object.keys(schema.$defs)) {
      expect(() => z.fromJSONSchema({ $defs: schema.$defs, $ref: `#/$defs/${key}` } as never), key).not.toThrow();
    }
  });

  it('accepts what the hub accepts and refuses what it refuses', () => {
    const { $defs } = contractJsonSchema();
    const published = (key: string) => z.fromJSONSchema({ $defs, $ref: `#/$defs/${key}` } as never);
    const progress = published('agent:task.progress:request');
    const valid = { workflowId: 'wf-1', workOrderId: 'wo-1', attemptToken: 'a1b2', progress: 50, details: { rows: 10 } };
    expect(progress.safeParse(valid).success).toBe(true);
    expect(progress.safeParse({ ...valid, progress: 101 }).success).toBe(false);
    expect(progress.safeParse({ ...valid, extra: true }).success).toBe(false);
    expect(progress.safeParse({ ...valid, workflowId: '../etc' }).success).toBe(false);
    const offer = published('agent:assignment:reply');
    expect(offer.safeParse({ accept: true }).success).toBe(true);
    expect(offer.safeParse({ accept: false, reason: 'busy' }).success).toBe(true);
    expect(offer.safeParse({ accept: 'yes' }).success).toBe(false);
    // Rules zod checks in code that the schema states too: reserved ids and names (once trimmed), blank names, an update changing nothing.
    const create = published('control:workflow.create:request');
    expect([create.safeParse({ id: 'constructor', userQuery: 'q' }).success, create.safeParse({ id: 'constructor-1', userQuery: 'q' }).success]).toEqual([false, true]);
    const stage = published('control:workflow.progress:request');
    expect(['   ', ' toString ', ' stage 1 '].map((name) => stage.safeParse({ workflowId: 'wf', stage: name, percentage: 5 }).success)).toEqual([false, false, true]);
    // Names are bounded once trimmed, as the hub bounds them: blanks around 200 characters are taken, a 201st is not.
    expect([`  ${'a'.repeat(200)} `, `${'a'.repeat(201)}`].map((name) => stage.safeParse({ workflowId: 'wf', stage: name, percentage: 5 }).success)).toEqual([true, false]);
    const register = published('agent:agent.register:request');
    expect(register.safeParse({ agentId: 'w', agentType: 'worker', taskTypes: [` ${'t'.repeat(100)} `] }).success).toBe(true);
    const update = published('control:objective.update:request');
    expect([update.safeParse({ workflowId: 'wf', objectiveId: 'o' }).success, update.safeParse({ workflowId: 'wf', objectiveId: 'o', progress: 5 }).success]).toEqual([false, true]);
    const ack = published('Ack');
    expect(ack.safeParse({ ok: false, error: { code: 'STALE_ATTEMPT', message: 'lost' } }).success).toBe(true);
    expect(ack.safeParse({ ok: false, error: { code: 'OOPS', message: 'lost' } }).success).toBe(false);
  });

  it('refuses every member of Object.prototype as an id, a name and a record key, __proto__ included', () => {
    const record = keyedRecord(keyName(100), z.number());
    for (const name of RESERVED_KEYS) {
      // Only the names Id's pattern lets through reach the reserved-name rule; the rest fail the pattern.
      expect([name, Id.safeParse(name).success, keyName(100).safeParse(name).success]).toEqual([name, false, false]);
      // As the hub receives it: JSON.parse makes even `__proto__` an own key.
      const keyed = JSON.parse(JSON.stringify({ [name]: 1 }));
      expect([name, record.safeParse(keyed).success, Metadata.safeParse(keyed).success]).toEqual([name, false, false]);
    }
    expect(record.safeParse({ ok: 1 }).data).toEqual({ ok: 1 });
    expect(Id.safeParse('constructor-1').success).toBe(true);
  });
});
