import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contractJsonSchemaText, SCHEMA_FILE } from '../shared/json-schema.ts';

// `npm run schema` writes the JSON Schema of the contract; `npm run schema -- --check` only says whether the committed file is current.
const file = fileURLToPath(new URL(`../${SCHEMA_FILE}`, import.meta.url));
const text = contractJsonSchemaText();

if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(file, 'utf8');
  } catch {
    // A missing file is as stale as an old one.
  }
  if (committed !== text) {
    process.stderr.write(`${SCHEMA_FILE} is stale: run npm run schema and commit it\n`);
    process.exit(1);
  }
  process.stdout.write(`${SCHEMA_FILE} is up to date\n`);
} else {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  process.stdout.write(`wrote ${SCHEMA_FILE} (${Buffer.byteLength(text)} bytes)\n`);
}
