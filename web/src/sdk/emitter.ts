/** A small typed event emitter: `on(name, listener)` returns the function that removes it. */
export class Emitter<Events extends { [name: string]: unknown }> {
  private readonly listeners = new Map<keyof Events, Set<(detail: never) => void>>();

  /** Listens to `name`; call the returned function to stop. */
  on<K extends keyof Events>(name: K, listener: (detail: Events[K]) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener as (detail: never) => void);
    return () => set.delete(listener as (detail: never) => void);
  }

  /** Tells every listener of `name`; a listener that throws does not stop the others. */
  protected emit<K extends keyof Events>(name: K, detail: Events[K]): void {
    for (const listener of [...(this.listeners.get(name) ?? [])]) {
      try {
        (listener as (d: Events[K]) => void)(detail);
      } catch (e) {
        console.error(`softphone: a ${String(name)} listener threw`, e);
      }
    }
  }
}
