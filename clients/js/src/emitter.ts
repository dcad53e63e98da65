// A minimal typed event emitter: `on` returns its own unsubscribe; listeners that throw are
// isolated (reported to `onListenerError`) so one bad UI callback cannot break the SDK.

export type Listener<A extends unknown[]> = (...args: A) => void;

export class Emitter<Events extends Record<string, unknown[]>> {
  #listeners = new Map<keyof Events, Set<Listener<any>>>();

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {}

  on<K extends keyof Events>(name: K, fn: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(fn);
    return () => { set!.delete(fn); };
  }

  emit<K extends keyof Events>(name: K, ...args: Events[K]): void {
    for (const fn of [...(this.#listeners.get(name) ?? [])]) {
      try { fn(...args); } catch (err) { if (name !== 'error') this.onListenerError(err); }
    }
  }
}
