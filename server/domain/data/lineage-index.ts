import type { Transformation } from '../../../shared/schemas/lineage.ts';
import { arrayIndexPlace, isArrayIndex } from '../machinery/key-order.ts';

const idOf = (run: Transformation) => run.id;

/** Files `run` in the list under `key`, creating it, where `for…in` would list it (see LineageIndex). */
function file(map: Map<string, Transformation[]>, key: string, run: Transformation): void {
  const runs = map.get(key);
  if (!runs) return void map.set(key, [run]);
  if (!isArrayIndex(run.id)) return void runs.push(run);
  let at = 0;
  while (at < runs.length && isArrayIndex(runs[at]!.id) && Number(runs[at]!.id) < Number(run.id)) at++;
  runs.splice(at, 0, run);
}

/** Takes `run` out of the list under `key`, the last one when it is the newest (always, when undone in order). */
function pull(map: Map<string, Transformation[]>, key: string, run: Transformation): void {
  const runs = map.get(key);
  if (!runs) return;
  const at = runs.at(-1) === run ? runs.length - 1 : runs.indexOf(run);
  if (at >= 0) runs.splice(at, 1);
  if (runs.length === 0) map.delete(key);
}

/**
 * One workflow's transformations in the order `for…in` lists the document's runs: those whose id
 * is an array index ("7") first, ascending, then the others in the order they were recorded; and
 * by the references they produce and read, in that order too, so that a lineage walk follows the
 * runs of the references it meets instead of looking at every run of the workflow. The order is
 * the one a document read back from disk gives, so answers and cursors hold across a restart and
 * the archive. Runs are never changed or removed once recorded; each is added with its undo (`add`).
 */
export class LineageIndex {
  /** Runs whose id is an array index, ascending by id. */
  private readonly indexed: Transformation[] = [];
  /** The other runs, in recording order, and the place of each among them. */
  private readonly named: Transformation[] = [];
  private readonly namedPlaces = new Map<string, number>();
  /** Runs by each reference among their outputs: what made it (upstream). */
  private readonly producing = new Map<string, Transformation[]>();
  /** Runs by each reference among their inputs: what was made from it (downstream). */
  private readonly consuming = new Map<string, Transformation[]>();

  constructor(runs: Iterable<Transformation> = []) {
    for (const run of runs) this.add(run);
  }

  /** How many runs there are. */
  get size(): number {
    return this.indexed.length + this.named.length;
  }

  /** The run at a place in listing order (0 is the first). */
  runAt(place: number): Transformation | undefined {
    return place < this.indexed.length ? this.indexed[place] : this.named[place - this.indexed.length];
  }

  /** The place of a run in listing order, or undefined when there is no such run. */
  placeOf(runId: string): number | undefined {
    if (isArrayIndex(runId)) {
      const place = arrayIndexPlace(this.indexed, runId, idOf);
      return this.indexed[place]?.id === runId ? place : undefined;
    }
    const place = this.namedPlaces.get(runId);
    return place === undefined ? undefined : this.indexed.length + place;
  }

  /** The runs that produced a reference (upstream) or read it (downstream), in listing order. */
  runsOf(dataId: string, direction: 'upstream' | 'downstream'): readonly Transformation[] {
    return (direction === 'upstream' ? this.producing : this.consuming).get(dataId) ?? [];
  }

  /** Adds a run just recorded; returns what takes it out again. */
  add(run: Transformation): () => void {
    if (isArrayIndex(run.id)) this.indexed.splice(arrayIndexPlace(this.indexed, run.id, idOf), 0, run);
    else this.namedPlaces.set(run.id, this.named.push(run) - 1);
    for (const id of run.outputs) file(this.producing, id, run);
    for (const id of run.inputs) file(this.consuming, id, run);
    return () => {
      for (const id of run.inputs) pull(this.consuming, id, run);
      for (const id of run.outputs) pull(this.producing, id, run);
      if (isArrayIndex(run.id)) {
        const at = this.indexed.indexOf(run);
        if (at >= 0) this.indexed.splice(at, 1);
        return;
      }
      const place = this.namedPlaces.get(run.id);
      if (place === undefined) return;
      this.namedPlaces.delete(run.id);
      this.named.splice(place, 1);
      // Only when undone out of order do later runs move down a place.
      for (let later = place; later < this.named.length; later++) this.namedPlaces.set(this.named[later]!.id, later);
    };
  }
}
