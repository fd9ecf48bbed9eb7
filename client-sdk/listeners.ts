/** Where a listener's error goes: it is reported, never thrown into the SDK that called the listener. */
export type ListenerErrorSink = (event: string, error: unknown) => void;

const toConsole: ListenerErrorSink = (event, error) => console.error(`[switchboard] a "${event}" listener threw:`, error);

/** A minimal typed event emitter that also works in the browser. */
export class Listeners<Events extends Record<string, unknown>> {
  private readonly map = new Map<keyof Events, Set<(payload: never) => void>>();

  /** `onError` gets what a listener throws (default: console.error), so that the others and the SDK go on. */
  constructor(private readonly onError: ListenerErrorSink = toConsole) {}

  /** Calls `listener` on every `event`; returns a function that stops it. */
  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void {
    let set = this.map.get(event);
    if (!set) this.map.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => set.delete(listener as (payload: never) => void);
  }

  /** Calls every listener of `event`; one that throws is reported and does not stop the others. */
  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const listener of this.map.get(event) ?? []) {
      try {
        (listener as (payload: Events[K]) => void)(payload);
      } catch (error) {
        this.onError(String(event), error);
      }
    }
  }
}
