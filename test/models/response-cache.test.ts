// The response cache: an LRU bounded in bytes, keys independent of field order, per-model drop.
import t from 'tap';

import { ResponseCache } from '../../src/models/response-cache.js';

const observer = () => {
  const seen = { hit: 0, miss: 0, eviction: 0, bytes: 0 };
  return { seen, observer: { hit: () => seen.hit++, miss: () => seen.miss++, eviction: () => seen.eviction++, bytes: (n: number) => (seen.bytes = n) } };
};

t.test('keys ignore field order and undefined fields, and differ by model and route', async (t) => {
  const k = ResponseCache.key('m', 'infer', { a: 1, b: [1, { c: 2, d: 3 }] });
  t.equal(ResponseCache.key('m', 'infer', { b: [1, { d: 3, c: 2 }], a: 1, e: undefined }), k);
  t.not(ResponseCache.key('m2', 'infer', { a: 1, b: [1, { c: 2, d: 3 }] }), k);
  t.not(ResponseCache.key('m', 'embed', { a: 1, b: [1, { c: 2, d: 3 }] }), k);
});

t.test('least recently used entries go first, within the byte budget', async (t) => {
  const { seen, observer: o } = observer();
  const key = (i: number) => String(i).padStart(64, '0');
  const cache = new ResponseCache(3 * (64 + 10), o);
  for (const i of [1, 2, 3]) cache.set('m', key(i), 'x'.repeat(10));
  t.equal(cache.get('m', key(1)), 'x'.repeat(10), 'a hit refreshes 1');
  cache.set('m', key(4), 'y'.repeat(10));
  t.equal(cache.get('m', key(2)), undefined, '2 was the least recently used');
  t.ok(cache.get('m', key(1)) && cache.get('m', key(3)) && cache.get('m', key(4)));
  t.equal(seen.eviction, 1);
  t.equal(seen.bytes, 3 * 74);
  cache.set('m', key(5), 'z'.repeat(1000));
  t.equal(cache.get('m', key(5)), undefined, 'an entry larger than the whole budget is not kept');
});

t.test('dropModel forgets one model only; a disabled cache keeps nothing', async (t) => {
  const { observer: o } = observer();
  const cache = new ResponseCache(1 << 20, o);
  cache.set('a', 'ka', '1');
  cache.set('b', 'kb', '2');
  cache.dropModel('a');
  t.equal(cache.get('a', 'ka'), undefined);
  t.equal(cache.get('b', 'kb'), '2');
  const off = new ResponseCache(0, o);
  off.set('a', 'k', 'v');
  t.equal(off.get('a', 'k'), undefined);
  t.notOk(off.enabled);
});
