import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_LANGUAGES, isLanguageEnabled, withLanguage } from '../../src/languages';

describe('per-language enable', () => {
  it('defaults: code on, prose and commit messages off', () => {
    assert.equal(isLanguageEnabled(DEFAULT_LANGUAGES, 'python'), true);
    assert.equal(isLanguageEnabled(DEFAULT_LANGUAGES, 'markdown'), false);
    assert.equal(isLanguageEnabled(DEFAULT_LANGUAGES, 'plaintext'), false);
    assert.equal(isLanguageEnabled(DEFAULT_LANGUAGES, 'scminput'), false);
  });

  it('supports allow-lists with "*": false', () => {
    const map = { '*': false, python: true };
    assert.equal(isLanguageEnabled(map, 'python'), true);
    assert.equal(isLanguageEnabled(map, 'rust'), false);
  });

  it('treats garbage as "everything on" and ignores non-boolean entries', () => {
    assert.equal(isLanguageEnabled(undefined, 'go'), true);
    assert.equal(isLanguageEnabled(['go'], 'go'), true);
    assert.equal(isLanguageEnabled({ go: 'no' }, 'go'), true);
  });

  it('toggles a language with an explicit entry (VS Code merges object settings with defaults)', () => {
    const off = withLanguage(DEFAULT_LANGUAGES, 'python', false);
    assert.equal(off.python, false);
    assert.equal(isLanguageEnabled(off, 'python'), false);
    const on = withLanguage(off, 'python', true);
    assert.equal(on.python, true);
    assert.equal(isLanguageEnabled(on, 'python'), true);
    assert.equal(withLanguage(DEFAULT_LANGUAGES, 'markdown', true).markdown, true);
    assert.deepEqual(DEFAULT_LANGUAGES, { '*': true, plaintext: false, markdown: false, scminput: false }, 'input not mutated');
  });
});
