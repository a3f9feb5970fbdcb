// The hypergraph's rules: unique nodes and links (SimilarityLink order-free), incoming sets,
// removal refused while contained unless recursive, truth and attention values, types.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AtomSpace, AtomSpaceError } from '../../src/atomspace/atomspace.js';

const open = async (types = []) => (await AtomSpace.open({ dataDir: mkdtempSync(join(tmpdir(), 'atoms-')), types })).atomspace;

t.test('nodes are unique by (type, name); links by (type, outgoing)', async (t) => {
  const as = await open();
  t.teardown(() => as.close());
  const cat = await as.addNode({ type: 'ConceptNode', name: 'cat' });
  const again = await as.addNode({ type: 'ConceptNode', name: 'cat' });
  t.equal(cat.created, true);
  t.equal(again.created, false);
  t.equal(again.atom.id, cat.atom.id, 'adding an existing node returns it');
  const pred = await as.addNode({ type: 'PredicateNode', name: 'cat' });
  t.not(pred.atom.id, cat.atom.id, 'same name, other type: another node');
  const animal = (await as.addNode({ type: 'ConceptNode', name: 'animal' })).atom;

  const inh = await as.addLink({ type: 'InheritanceLink', outgoing: [cat.atom.id, animal.id] });
  const inhAgain = await as.addLink({ type: 'InheritanceLink', outgoing: [cat.atom.id, animal.id] });
  const inhReversed = await as.addLink({ type: 'InheritanceLink', outgoing: [animal.id, cat.atom.id] });
  t.equal(inhAgain.atom.id, inh.atom.id, 'same link returned');
  t.not(inhReversed.atom.id, inh.atom.id, 'InheritanceLink is ordered');
  const sim = await as.addLink({ type: 'SimilarityLink', outgoing: [cat.atom.id, animal.id] });
  const simReversed = await as.addLink({ type: 'SimilarityLink', outgoing: [animal.id, cat.atom.id] });
  t.equal(simReversed.atom.id, sim.atom.id, 'SimilarityLink ignores order');
  t.equal(simReversed.created, false);
  // Links of links: a hypergraph.
  const list = await as.addLink({ type: 'ListLink', outgoing: [inh.atom.id, sim.atom.id] });
  t.same(as.get(list.atom.id)!.outgoing, [inh.atom.id, sim.atom.id]);
  t.equal(as.size, 7, '3 nodes and 4 links');
});

t.test('incoming sets and removal rules', async (t) => {
  const as = await open();
  t.teardown(() => as.close());
  const a = (await as.addNode({ type: 'ConceptNode', name: 'a' })).atom.id;
  const b = (await as.addNode({ type: 'ConceptNode', name: 'b' })).atom.id;
  const ab = (await as.addLink({ type: 'ListLink', outgoing: [a, b] })).atom.id;
  const outer = (await as.addLink({ type: 'MemberLink', outgoing: [ab, b] })).atom.id;
  t.same(as.incoming(a).map((x) => x.id), [ab]);
  t.same(as.incoming(b).map((x) => x.id), [ab, outer]);
  t.same(as.incoming(ab).map((x) => x.id), [outer]);

  const refused = await as.remove(a, false).catch((e: AtomSpaceError) => e);
  t.ok(refused instanceof AtomSpaceError);
  t.equal((refused as AtomSpaceError).code, 'HAS_INCOMING');
  t.ok(as.get(a), 'still there');
  const removed = await as.remove(a, true);
  t.same(removed.sort(), [a, ab, outer].sort(), 'recursive removal takes the links containing it');
  t.equal(as.get(ab), undefined);
  t.same(as.incoming(b), [], 'incoming sets follow');
  t.ok(as.get(b), 'unrelated atoms stay');
  t.same(await as.remove(b, false), [b], 'an atom with no incoming set goes');
  const missing = await as.remove(999, false).catch((e: AtomSpaceError) => e.code);
  t.equal(missing, 'ATOM_NOT_FOUND');
});

t.test('truth and attention values; validation', async (t) => {
  const as = await open();
  t.teardown(() => as.close());
  const { atom } = await as.addNode({ type: 'ConceptNode', name: 'x', tv: { strength: 0.8, confidence: 0.5 } });
  t.same(atom.tv, { strength: 0.8, confidence: 0.5 });
  t.same(atom.av, { sti: 0, lti: 0 });
  const updated = await as.update(atom.id, { av: { sti: 10 } });
  t.same(updated.av, { sti: 10, lti: 0 });
  t.same(updated.tv, { strength: 0.8, confidence: 0.5 }, 'tv unchanged by an av update');
  const bad = async (fn: () => Promise<unknown>, code: string, message: RegExp) => {
    const e = (await fn().catch((x: unknown) => x)) as AtomSpaceError;
    t.equal(e?.code, code);
    t.match(e?.message, message);
  };
  await bad(() => as.update(atom.id, { tv: { strength: 2, confidence: 0 } }), 'BAD_ATOM', /tv.strength must be a number from 0 to 1/);
  await bad(() => as.addNode({ type: 'FlowerNode', name: 'rose' }), 'BAD_ATOM', /unknown atom type 'FlowerNode'/);
  await bad(() => as.addNode({ type: 'ListLink', name: 'x' }), 'BAD_ATOM', /not a node type/);
  await bad(() => as.addLink({ type: 'ConceptNode', outgoing: [atom.id] }), 'BAD_ATOM', /not a link type/);
  await bad(() => as.addLink({ type: 'ListLink', outgoing: [atom.id, 12345] }), 'ATOM_NOT_FOUND', /outgoing atom 12345/);
  await bad(() => as.addNode({ type: 'ConceptNode', name: '' }), 'BAD_ATOM', /name/);
  const batch = await as.addBatch([{ node: { type: 'ConceptNode', name: 'ok' } }, { node: { type: 'NopeNode', name: 'bad' } }]).catch((e: AtomSpaceError) => e.code);
  t.equal(batch, 'BAD_ATOM');
  t.equal(as.find({ type: 'ConceptNode', name: 'ok' }).total, 0, 'a bad item leaves the whole batch out');
});

t.test('types are extensible; queries include subtypes', async (t) => {
  const as = await open([{ name: 'AnimalNode', parent: 'ConceptNode' }, { name: 'SymmetricLink', parent: 'Link', unordered: true }] as never);
  t.teardown(() => as.close());
  const cat = (await as.addNode({ type: 'AnimalNode', name: 'cat' })).atom.id;
  const idea = (await as.addNode({ type: 'ConceptNode', name: 'idea' })).atom.id;
  t.same(as.find({ type: 'ConceptNode' }).atoms.map((a) => a.id).sort(), [cat, idea].sort(), 'ConceptNode includes AnimalNode');
  t.same(as.find({ type: 'AnimalNode' }).atoms.map((a) => a.id), [cat]);
  t.equal(as.find({ type: 'Node' }).total, 2);
  const s1 = await as.addLink({ type: 'SymmetricLink', outgoing: [cat, idea] });
  const s2 = await as.addLink({ type: 'SymmetricLink', outgoing: [idea, cat] });
  t.equal(s1.atom.id, s2.atom.id, 'configured unordered link type');
  t.throws(() => as.types.define({ name: 'BadNode', parent: 'NoSuchType' }), /unknown parent type/);
});
