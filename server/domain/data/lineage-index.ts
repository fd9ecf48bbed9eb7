import type { Transformation } from '../../../shared/schemas/lineage.ts';

/** Appends to the list under `key`, creating it. */
function push(map: Map<string, Transformation[]>, key: string, run: Transformation): void {
  const runs = map.get(key);
  if (runs) runs.push(run);
  else map.set(key, [run]);
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
 * One workflow's transformations in the order they were recorded, and by the references they
 * produce and read, so that a lineage walk follows the runs of the references it meets instead
 * of looking at every run of the workflow. Runs are never changed or removed once recorded; each
 * is added with its undo (`add`).
 */
export class LineageIndex {
  private readonly runs: Transformation[] = [];
  private readonly places = new Map<string, number>();
  /** Runs by each reference among their outputs: what made it (upstream). */
  private readonly producing = new Map<string, Transformation[]>();
  /** Runs by each reference among their inputs: what was made from it (downstream). */
  private readonly consuming = new Map<string, Transformation[]>();

  constructor(runs: Iterable<Transformation> = []) {
    for (const run of runs) this.add(run);
  }

  /** How many runs there are. */
  get size(): number {
    return this.runs.length;
  }

  /** The run recorded at a place (0 is the first). */
  runAt(place: number): Transformation | undefined {
    return this.runs[place];
  }

  /** The place of a run in recording order, or undefined when there is no such run. */
  placeOf(runId: string): number | undefined {
    return this.places.get(runId);
  }

  /** The runs that produced a reference (upstream) or read it (downstream), in recording order. */
  runsOf(dataId: string, direction: 'upstream' | 'downstream'): readonly Transformation[] {
    return (direction === 'upstream' ? this.producing : this.consuming).get(dataId) ?? [];
  }

  /** Adds a run just recorded; returns what takes it out again. */
  add(run: Transformation): () => void {
    this.places.set(run.id, this.runs.push(run) - 1);
    for (const id of run.outputs) push(this.producing, id, run);
    for (const id of run.inputs) push(this.consuming, id, run);
    return () => {
      for (const id of run.inputs) pull(this.consuming, id, run);
      for (const id of run.outputs) pull(this.producing, id, run);
      const place = this.places.get(run.id);
      if (place === undefined) return;
      this.places.delete(run.id);
      this.runs.splice(place, 1);
      // Only when undone out of order do later runs move down a place.
      for (let later = place; later < this.runs.length; later++) this.places.set(this.runs[later]!.id, later);
    };
  }
}
