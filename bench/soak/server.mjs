// The real server (dist/src/server/main.js), run in this process with one soak-only addition:
// SIGUSR2 runs a full garbage collection (start node with --expose-gc), so that the soak driver
// can tell native tensors still referenced from ones only waiting for the GC.
process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') globalThis.gc();
});
await import('../../dist/src/server/main.js');
