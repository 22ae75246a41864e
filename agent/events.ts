/**
 * A small typed event bus. Every listener is wrapped so that one that throws (or rejects) is logged
 * and isolated: it can never take the control loop or the process down.
 */
import type { Log } from '../drivers/log.js';

export class EventBus<Events extends { [K in keyof Events]: unknown }> {
  private readonly listeners = new Map<keyof Events, Set<(payload: never) => unknown>>();

  constructor(private readonly log: Log) {}

  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => unknown): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => unknown);
    return () => set.delete(listener as (payload: never) => unknown);
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        const result = (listener as (p: Events[K]) => unknown)(payload);
        if (result instanceof Promise) {
          result.catch((err: unknown) => this.log.error({ err, event: String(event) }, 'event listener failed'));
        }
      } catch (err) {
        this.log.error({ err, event: String(event) }, 'event listener failed');
      }
    }
  }
}
