/**
 * The document of an archived file in format 2: one line per unit of the workflow, in its key
 * order. A top-level field is `[field, value]` (an object-valued one as `[field, {}]`), and each
 * item of an object-valued field follows it as `[field, key, value]`. A reader parses one small
 * line at a time, so it can stop between any two to let the hub serve, and setting each line's
 * value in order gives back the workflow with its keys in the order they were written in.
 */

import { createHash } from 'node:crypto';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { TimeSlice } from '../time-slice.ts';

/** Lines parsed between two looks at the clock. */
const LINES_PER_LOOK = 64;

/** A part of an archived file that does not hold what was written there; the message says how. */
export class DamagedPart extends Error {}

/** The line of one unit of a document (see PinnedDoc.readUnit): its JSON, newline included. */
export function documentLine(unit: { field: string; key: string | undefined; json: string }): string {
  const field = JSON.stringify(unit.field);
  return unit.key === undefined ? `[${field},${unit.json}]\n` : `[${field},${JSON.stringify(unit.key)},${unit.json}]\n`;
}

/** Builds a workflow from the lines of its document, given in order. */
export class DocumentFromLines {
  private readonly document: Record<string, unknown> = {};
  private lines = 0;

  /** Adds one line (without its newline); throws DamagedPart when it is not a line of a document. */
  add(line: string): void {
    this.lines++;
    let unit: unknown;
    try {
      unit = JSON.parse(line);
    } catch {
      throw new DamagedPart(`line ${this.lines} of its document does not parse`);
    }
    if (!Array.isArray(unit) || typeof unit[0] !== 'string') throw new DamagedPart(`line ${this.lines} of its document is not a field or an item`);
    if (unit.length === 2) {
      setKey(this.document, unit[0], unit[1]);
      return;
    }
    const field = this.document[unit[0]];
    if (unit.length !== 3 || typeof unit[1] !== 'string' || typeof field !== 'object' || field === null || Array.isArray(field)) {
      throw new DamagedPart(`line ${this.lines} of its document is not a field or an item of one`);
    }
    setKey(field as Record<string, unknown>, unit[1], unit[2]);
  }

  /** The workflow the lines added so far describe. */
  get workflow(): Workflow {
    return this.document as unknown as Workflow;
  }
}

/**
 * Reads a document from its bytes as they come (cut anywhere, even within a character), a slice of
 * a few milliseconds per turn: builds the workflow line by line and hashes the bytes. Every
 * archive reads through here, whatever holds the bytes. Throws DamagedPart when a line is not one
 * of a document or the bytes end within a line.
 */
export async function readDocument(bytes: AsyncIterable<Buffer>): Promise<{ workflow: Workflow; sha256: string }> {
  const hash = createHash('sha256');
  const builder = new DocumentFromLines();
  // The start of a line that goes on in the next part.
  let begun: Buffer[] = [];
  let lines = 0;
  const slice = new TimeSlice();
  for await (const part of bytes) {
    hash.update(part);
    let start = 0;
    for (let end = part.indexOf(10); end !== -1; end = part.indexOf(10, start)) {
      const line = begun.length === 0 ? part.subarray(start, end) : Buffer.concat([...begun, part.subarray(start, end)]);
      begun = [];
      // A newline byte never occurs inside a multi-byte UTF-8 character, so each line decodes alone.
      builder.add(line.toString('utf8'));
      start = end + 1;
      if (++lines % LINES_PER_LOOK === 0 && slice.spent) await slice.next();
    }
    if (start < part.length) begun.push(part.subarray(start));
  }
  if (begun.length > 0) throw new DamagedPart('it ends within a line');
  return { workflow: builder.workflow, sha256: hash.digest('hex') };
}

/** Sets `target[key]` as JSON.parse would: a key `__proto__` becomes an own property, not the prototype. */
function setKey(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
