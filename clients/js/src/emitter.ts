/**
 * A small typed event emitter, the same in browsers and Node.
 * @module
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => void;

/** Map of event name → listener signature. */
export type EventMap<E> = { [K in keyof E]: Listener };

/**
 * Typed event emitter. A listener that throws does not disturb the emitter or
 * the other listeners: the error is rethrown asynchronously (where the
 * runtime reports uncaught errors).
 */
export class Emitter<E extends EventMap<E>> {
  private readonly listeners = new Map<keyof E, Set<Listener>>();
  /** once()'s wrappers → the listeners they wrap, for off(). */
  private readonly onceOf = new WeakMap<Listener, Listener>();

  /**
   * Adds a listener.
   * @returns a function that removes it again.
   */
  on<K extends keyof E>(event: K, listener: E[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Adds a listener that is called at most once. */
  once<K extends keyof E>(event: K, listener: E[K]): () => void {
    const wrapped = ((...args: Parameters<E[K]>) => {
      off();
      listener(...args);
    }) as E[K];
    this.onceOf.set(wrapped, listener);
    const off = this.on(event, wrapped);
    return off;
  }

  /** Removes a listener added with {@link Emitter.on} or {@link Emitter.once}. */
  off<K extends keyof E>(event: K, listener: E[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    if (set.delete(listener)) return;
    // once() added a wrapper: remove the first one around this listener
    for (const l of set) {
      if (this.onceOf.get(l) === listener) {
        set.delete(l);
        return;
      }
    }
  }

  /** Number of listeners of an event. */
  listenerCount<K extends keyof E>(event: K): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** @internal Calls every listener of `event` with `args`. */
  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
