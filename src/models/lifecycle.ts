/**
 * Lifecycle events of the models in a registry: what metrics, the response cache and readiness
 * listen to, instead of being called from inside the registry.
 *
 * loading → ready | failed; ready → unloading → unloaded. An eviction is an unload the
 * registry chose (`evicted` comes before its `unloading`).
 */
import { EventEmitter } from 'node:events';

/** Every event names the model, and last the version it is about. */
export interface LifecycleEvents {
  loading: [model: string, version: string];
  ready: [model: string, seconds: number, version: string];
  failed: [model: string, error: string, seconds: number, version: string];
  unloading: [model: string, version: string];
  unloaded: [model: string, version: string];
  evicted: [model: string, version: string];
}

export class ModelLifecycle extends EventEmitter<LifecycleEvents> {}
