import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_RECENT, applyProposal, instructionChoices, lineSpan, parseProposal, rememberInstruction, textIn } from '../../src/edits';

const ADD = 'def add(a, b):\n    return a - b\n\n\nprint(add(2, 3))\n';
const BODY = { start: { line: 1, character: 0 }, end: { line: 2, character: 0 } };

describe('the server proposal', () => {
  it('takes text, range and version', () => {
    const r = parseProposal({ applied: false, text: '    return a + b\n', range: BODY, version: 7 });
    assert.deepEqual(r, { ok: true, proposal: { text: '    return a + b\n', range: BODY, version: 7 } });
  });

  it('passes on the reason of a refusal or a cancel', () => {
    assert.deepEqual(parseProposal({ applied: false, text: '', reason: 'cancelled' }), { ok: false, reason: 'cancelled' });
  });

  it('never takes a malformed answer for an edit', () => {
    for (const bad of [null, 'x', 3, {}, { text: 'x', range: BODY }, { text: 'x', range: { start: 1 }, version: 1 },
      { text: 'x', range: { start: { line: -1, character: 0 }, end: { line: 0, character: 0 } }, version: 1 }]) {
      assert.equal(parseProposal(bad).ok, false, JSON.stringify(bad));
    }
  });
});

describe('applying a proposal to the document text', () => {
  it('replaces exactly the range, the rest byte-identical', () => {
    assert.equal(applyProposal(ADD, { text: '    return a + b\n', range: BODY }), ADD.replace('a - b', 'a + b'));
    assert.equal(textIn(ADD, BODY), '    return a - b\n');
  });

  it('keeps CRLF line ends and counts them as one break', () => {
    const crlf = ADD.replace(/\n/g, '\r\n');
    assert.equal(textIn(crlf, BODY), '    return a - b\r\n');
    assert.equal(applyProposal(crlf, { text: '    return a + b\r\n', range: BODY }), crlf.replace('a - b', 'a + b'));
  });

  it('clamps a character past the line end and a line past the end', () => {
    const r = { start: { line: 1, character: 99 }, end: { line: 40, character: 0 } };
    assert.equal(textIn(ADD, r), '\n\n\nprint(add(2, 3))\n');
    assert.equal(applyProposal('x', { text: 'y', range: r }), 'xy');
  });
});

describe('recent instructions', () => {
  it('puts the latest first, without repeats, bounded', () => {
    let recent: string[] = [];
    for (let i = 0; i < MAX_RECENT + 3; i++) recent = rememberInstruction(recent, `do ${i}`);
    recent = rememberInstruction(recent, ' do 5 ');
    assert.equal(recent.length, MAX_RECENT);
    assert.equal(recent[0], 'do 5');
    assert.equal(recent.filter((r) => r === 'do 5').length, 1);
    assert.equal(recent[1], `do ${MAX_RECENT + 2}`);
  });

  it('ignores what is not a string in stored state', () => {
    assert.deepEqual(rememberInstruction([3, null, '', 'keep'], 'new'), ['new', 'keep']);
  });

  it('offers what was typed first, then the recent ones that match', () => {
    const recent = ['Fix bugs in add.', 'Add type hints.'];
    assert.deepEqual(instructionChoices(recent, ''), recent);
    assert.deepEqual(instructionChoices(recent, 'fix'), ['fix', 'Fix bugs in add.']);
    assert.deepEqual(instructionChoices(recent, 'Add type hints.'), ['Add type hints.']);
    assert.deepEqual(instructionChoices(recent, 'Rename x'), ['Rename x']);
  });
});

describe('line span', () => {
  it('names the lines a range covers', () => {
    assert.equal(lineSpan(BODY), 'line 2');
    assert.equal(lineSpan({ start: { line: 0, character: 0 }, end: { line: 3, character: 0 } }), 'lines 1-3');
    assert.equal(lineSpan({ start: { line: 0, character: 4 }, end: { line: 1, character: 2 } }), 'lines 1-2');
    assert.equal(lineSpan({ start: { line: 4, character: 0 }, end: { line: 4, character: 0 } }), 'line 5');
  });
});
