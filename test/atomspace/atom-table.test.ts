// AtomTable and ShardedMap behave like a Map (the oracle) under random sets and deletes:
// the same values, the same size, and AtomTable iterates in id order.
import t from 'tap';

import { AtomTable, ShardedMap } from '../../src/atomspace/atom-table.js';

function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

t.test('AtomTable equals a Map under random operations, in id order', async (t) => {
  const rand = random(1);
  const table = new AtomTable<string>();
  const oracle = new Map<number, string>();
  for (let i = 0; i < 20_000; i++) {
    const id = 1 + Math.floor(rand() * 5000);
    if (rand() < 0.3) t.equal(table.delete(id), oracle.delete(id));
    else {
      table.set(id, `v${i}`);
      oracle.set(id, `v${i}`);
    }
  }
  t.equal(table.size, oracle.size);
  t.same([...table.values()], [...oracle.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v), 'values in id order');
  for (let id = 0; id <= 5001; id++) t.equal(table.get(id), oracle.get(id), `id ${id}`);
  t.throws(() => table.set(-1, 'x'), RangeError);
});

t.test('ShardedMap equals a Map under random operations', async (t) => {
  const rand = random(2);
  const map = new ShardedMap<number>();
  const oracle = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const key = `ConceptNode\u0000name-${Math.floor(rand() * 3000)}`;
    if (rand() < 0.3) t.equal(map.delete(key), oracle.delete(key));
    else {
      map.set(key, i);
      oracle.set(key, i);
    }
  }
  t.equal(map.size, oracle.size);
  for (let k = 0; k < 3000; k++) {
    const key = `ConceptNode\u0000name-${k}`;
    t.equal(map.get(key), oracle.get(key));
    t.equal(map.has(key), oracle.has(key));
  }
});
