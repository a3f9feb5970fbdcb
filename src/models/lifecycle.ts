/**
 * Lifecycle events of the models in a registry: what metrics, the response cache and readiness
 * listen to, instead of being called from inside the registry.
 *
 * loading → ready | failed; ready → unloading → unloaded. An eviction is an unload the
 * registry chose (`evicted` comes before its `unloading`).
 */
import { EventEmitter } from 'node:events';

export interface LifecycleEvents {
  loading: [model: string];
  ready: [model: string, seconds: number];
  failed: [model: string, error: string, seconds: number];
  unloading: [model: string];
  unloaded: [model: string];
  evicted: [model: string];
}

export class ModelLifecycle extends EventEmitter<LifecycleEvents> {}
