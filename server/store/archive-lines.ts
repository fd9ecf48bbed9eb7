/**
 * The document of an archived file in format 2: one line per unit of the workflow, in its key
 * order. A top-level field is `[field, value]` (an object-valued one as `[field, {}]`), and each
 * item of an object-valued field follows it as `[field, key, value]`. A reader parses one small
 * line at a time, so it can stop between any two to let the hub serve, and setting each line's
 * value in order gives back the workflow with its keys in the order they were written in.
 */

import type { Workflow } from '../../shared/schemas/workflow.ts';

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

/** Sets `target[key]` as JSON.parse would: a key `__proto__` becomes an own property, not the prototype. */
function setKey(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
