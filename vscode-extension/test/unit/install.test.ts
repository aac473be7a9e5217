import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  COMPILE_NOTE, PROBE_SCRIPT, choosePython, cmakeArgs, elapsed, gpuOffer, installSource, modelToPull, newVenvDir, parseInstalled,
  parseVersionOutput, pipEnvironment, pipFailure, pipPhase, pipPlan, pythonCandidates, venvBin, type InstallSource,
} from '../../src/install';
import { resolveServerCommand } from '../../src/serverCommand';
import { MIN_SERVER_VERSION } from '../../src/version';

const root = path.resolve(__dirname, '../../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  contributes: { commands: { command: string; title: string; category: string }[]; configuration: { properties: Record<string, { scope?: string }> } };
  capabilities: { untrustedWorkspaces: { restrictedConfigurations: string[] } };
};

const files: Record<string, 'file' | 'dir'> = {
  '/home/ada/dist/starcoder_lsp-0.1.0-py3-none-any.whl': 'file',
  '/home/ada/dist/starcoder_lsp-0.1.0.tar.gz': 'file',
  '/home/ada/src/starcoder-lsp': 'dir',
  '/home/ada/notes.txt': 'file',
};
const source = (value: unknown, platform: NodeJS.Platform = 'linux') =>
  installSource({ value, home: '/home/ada', platform, kindOf: (p) => files[p] });
const index: InstallSource = { kind: 'index', spec: `starcoder-lsp>=${MIN_SERVER_VERSION}`, label: '' };

describe('what Install Server installs (starcoder.server.installFrom)', () => {
  it('takes the package index by default, at least the version this extension needs', () => {
    for (const value of [undefined, '', '   ', 42]) {
      const r = source(value);
      assert.ok(r.ok && r.source.kind === 'index' && r.source.spec === `starcoder-lsp>=${MIN_SERVER_VERSION}`, JSON.stringify(r));
    }
  });

  it('takes a local wheel, sdist or source folder (~ expanded) for offline installs', () => {
    const whl = source('~/dist/starcoder_lsp-0.1.0-py3-none-any.whl');
    assert.deepEqual(whl, { ok: true, source: { kind: 'file', spec: '/home/ada/dist/starcoder_lsp-0.1.0-py3-none-any.whl', label: 'starcoder_lsp-0.1.0-py3-none-any.whl' } });
    const sdist = source('${userHome}/dist/starcoder_lsp-0.1.0.tar.gz');
    assert.ok(sdist.ok && sdist.source.kind === 'file' && sdist.source.spec === '/home/ada/dist/starcoder_lsp-0.1.0.tar.gz');
    const folder = source('/home/ada/src/starcoder-lsp');
    assert.ok(folder.ok && folder.source.kind === 'folder');
  });

  it('takes a requirement on this package only', () => {
    for (const value of ['starcoder-lsp==0.2.0', 'starcoder-lsp >=0.1.0, <0.3', 'STARCODER-LSP', 'starcoder-lsp~=0.2']) {
      const r = source(value);
      assert.ok(r.ok && r.source.kind === 'requirement' && r.source.spec === value, value);
    }
    for (const value of ['evil-package', 'starcoder-lsp evil-package', 'starcoder-lsp==0.1 --index-url http://evil', '-r /etc/passwd',
      'starcoder-lsp @ https://evil/x.whl', 'starcoder-lsp; os.system("x")']) {
      assert.equal(source(value).ok, false, value);
    }
  });

  it('refuses relative paths, missing files and files that are no distribution, saying why', () => {
    const rel = source('./dist/x.whl');
    assert.ok(!rel.ok && /absolute path/.test(rel.message));
    const gone = source('/home/ada/dist/missing.whl');
    assert.ok(!gone.ok && /no such file/.test(gone.message));
    const txt = source('/home/ada/notes.txt');
    assert.ok(!txt.ok && /not a wheel/.test(txt.message));
    // ${workspaceFolder} is never expanded: a path is the user's own, not a repository's.
    assert.equal(source('${workspaceFolder}/evil.whl').ok, false);
  });
});

describe('which Python makes the venv', () => {
  const probe = (command: string, version: number[], mods = { venv: true, ensurepip: true }, executable = `/real${command}`) =>
    ({ command, stdout: `${JSON.stringify({ version, executable, ...mods })}\n` });

  it('tries python3 first, then the newest', () => {
    assert.deepEqual(pythonCandidates('linux').slice(0, 4), ['python3', 'python3.13', 'python3.12', 'python3.11']);
    assert.equal(pythonCandidates('win32')[0], 'python');
  });

  it('takes the first 3.11+ with venv and ensurepip, by its real executable', () => {
    const r = choosePython([probe('/usr/bin/python3', [3, 9, 2]), probe('/usr/bin/python3.12', [3, 12, 1])], 'linux');
    assert.deepEqual(r, { ok: true, python: { executable: '/real/usr/bin/python3.12', version: '3.12.1', command: '/usr/bin/python3.12' } });
  });

  it('says what it found and how to get a Python when none fits', () => {
    const old = choosePython([probe('/usr/bin/python3', [3, 10, 12]), { command: '/usr/bin/python', error: 'boom' }], 'linux');
    assert.ok(!old.ok);
    assert.match(old.message, /needs Python 3\.11 or newer/);
    assert.match(old.message, /\/usr\/bin\/python3 is 3\.10\.12/);
    assert.match(old.message, /StarCoder: Install Server/);
    const debian = choosePython([probe('/usr/bin/python3', [3, 11, 2], { venv: true, ensurepip: false })], 'linux');
    assert.ok(!debian.ok && /sudo apt install python3\.11-venv/.test(debian.message), JSON.stringify(debian));
    const mac = choosePython([], 'darwin');
    assert.ok(!mac.ok && /None was found/.test(mac.message) && /brew install/.test(mac.message));
    assert.equal(choosePython([{ command: 'x', stdout: 'not json' }], 'linux').ok, false);
  });

  it('probes with a script that prints one JSON line', () => {
    assert.match(PROBE_SCRIPT, /json\.dumps/);
    assert.match(PROBE_SCRIPT, /ensurepip/);
  });
});

describe('GPU builds', () => {
  const none = () => undefined;
  it('offers CUDA when nvidia-smi is on PATH, warning when nvcc is not there', () => {
    const withNvcc = gpuOffer({ platform: 'linux', arch: 'x64', which: (n) => `/usr/bin/${n}`, exists: () => false });
    assert.equal(withNvcc?.build, 'cuda');
    assert.doesNotMatch(withNvcc?.caveat ?? '', /nvcc was not found/);
    const toolkit = gpuOffer({ platform: 'linux', arch: 'x64', which: (n) => (n === 'nvidia-smi' ? '/usr/bin/nvidia-smi' : undefined), exists: (f) => f === '/usr/local/cuda/bin/nvcc' });
    assert.doesNotMatch(toolkit?.caveat ?? '', /not found/);
    const driverOnly = gpuOffer({ platform: 'linux', arch: 'x64', which: (n) => (n === 'nvidia-smi' ? '/usr/bin/nvidia-smi' : undefined), exists: () => false });
    assert.match(driverOnly?.caveat ?? '', /nvcc was not found/);
  });

  it('offers Metal on Apple Silicon, nothing on a plain CPU machine', () => {
    assert.equal(gpuOffer({ platform: 'darwin', arch: 'arm64', which: none, exists: () => false })?.build, 'metal');
    assert.equal(gpuOffer({ platform: 'darwin', arch: 'x64', which: none, exists: () => false }), undefined);
    assert.equal(gpuOffer({ platform: 'linux', arch: 'x64', which: none, exists: () => false }), undefined);
  });

  it('passes the backend to llama.cpp in CMAKE_ARGS, and builds without AMX on x86-64 Linux as the Makefile does', () => {
    assert.equal(cmakeArgs('metal', 'darwin', 'arm64'), '-DGGML_METAL=on');
    assert.match(cmakeArgs('cuda', 'linux', 'x64'), /^-DGGML_CUDA=on -DCMAKE_C_FLAGS="-mno-amx-tile/);
    assert.equal(cmakeArgs('cpu', 'linux', 'x64'), '-DCMAKE_C_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" -DCMAKE_CXX_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"');
    assert.equal(cmakeArgs('cpu', 'linux', 'arm64'), '');
    const makefile = fs.readFileSync(path.join(root, '..', 'Makefile'), 'utf8');
    assert.ok(makefile.includes('NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16'), 'the same flags as the Makefile');
  });
});

describe('the pip command', () => {
  it('installs the source with pip, its progress bar off; GPU builds skip the wheel cache', () => {
    const cpu = pipPlan(index, 'cpu', 'linux', 'x64', {}, 2);
    assert.deepEqual(cpu.args, ['-m', 'pip', 'install', '--progress-bar', 'off', `starcoder-lsp>=${MIN_SERVER_VERSION}`]);
    assert.equal(cpu.env.CMAKE_BUILD_PARALLEL_LEVEL, '2');
    assert.match(cpu.env.CMAKE_ARGS, /-mno-amx-tile/);
    const cuda = pipPlan({ kind: 'file', spec: '/d/x.whl', label: 'x.whl' }, 'cuda', 'linux', 'x64', {}, 8);
    assert.deepEqual(cuda.args.slice(-2), ['--no-cache-dir', '/d/x.whl']);
    assert.match(cuda.env.CMAKE_ARGS, /^-DGGML_CUDA=on/);
  });

  it('leaves pip\'s and CMake\'s own environment to the user (offline installs: PIP_NO_INDEX, PIP_FIND_LINKS)', () => {
    const env = { PIP_NO_INDEX: '1', PIP_FIND_LINKS: '/wheels', CMAKE_ARGS: '-DGGML_VULKAN=on', CMAKE_BUILD_PARALLEL_LEVEL: '3', PIP_DISABLE_PIP_VERSION_CHECK: '0' };
    const plan = pipPlan(index, 'cpu', 'linux', 'x64', env, 2);
    for (const key of Object.keys(env)) assert.ok(!(key in plan.env), key);
    assert.ok(!plan.args.some((a) => /index|find-links/.test(a)), plan.args.join(' '));
    assert.deepEqual(pipEnvironment({ ...env, HOME: '/h', PATH: '/bin' }), [
      'CMAKE_ARGS=-DGGML_VULKAN=on', 'PIP_DISABLE_PIP_VERSION_CHECK=0', 'PIP_FIND_LINKS=/wheels', 'PIP_NO_INDEX=1']);
    assert.deepEqual(pipEnvironment({ PIP_INDEX_URL: 'https://ada:s3cret@pypi.corp/simple', PIP_EXTRA_INDEX_URL: 'https://token@x/simple https://y/simple', PIP_CLIENT_CERT_PASSWORD: 'p' }), [
      'PIP_CLIENT_CERT_PASSWORD=***', 'PIP_EXTRA_INDEX_URL=https://***@x/simple https://y/simple', 'PIP_INDEX_URL=https://***@pypi.corp/simple']);
  });

  it('makes each venv a new folder, and finds its programs per platform', () => {
    assert.equal(newVenvDir('/s/server', new Date('2026-12-03T10:20:30.456Z'), 'linux'), '/s/server/venv-20261203-102030');
    assert.equal(venvBin('/s/v', 'starcoder-lsp', 'linux'), '/s/v/bin/starcoder-lsp');
    assert.equal(venvBin('C:\\s\\v', 'python', 'win32'), 'C:\\s\\v\\Scripts\\python.exe');
  });
});

describe('what pip\'s output says', () => {
  const phase = (line: string) => pipPhase(line, 'cpu');
  it('names the slow step: compiling llama.cpp, with how long it takes', () => {
    assert.deepEqual(phase('  Building wheel for llama-cpp-python (pyproject.toml): started'), { phase: 'compile', message: COMPILE_NOTE });
    assert.equal(phase('Building wheels for collected packages: llama-cpp-python')?.phase, 'compile');
    assert.match(COMPILE_NOTE, /compiling llama\.cpp for this CPU, ~6 min, once/);
    assert.match(pipPhase('Building wheel for llama_cpp_python (pyproject.toml) ... -', 'cuda')?.message ?? '', /CUDA/);
  });

  it('follows collecting, downloading, building and installing', () => {
    assert.deepEqual(phase('Collecting pygls<3,>=2.1 (from starcoder-lsp)'), { phase: 'resolve', message: 'collecting pygls' });
    assert.deepEqual(phase('Processing /tmp/w/starcoder_lsp-0.1.0-py3-none-any.whl'), { phase: 'resolve', message: 'collecting starcoder_lsp-0.1.0-py3-none-any.whl' });
    assert.deepEqual(phase('  Downloading numpy-2.4.6-cp311-cp311-manylinux_2_17_x86_64.whl (16.4 MB)'), { phase: 'download', message: 'downloading numpy (16.4 MB)' });
    assert.deepEqual(phase('Downloading llama_cpp_python-0.3.36.tar.gz (50.6 MB)'), { phase: 'download', message: 'downloading llama_cpp_python (50.6 MB)' });
    assert.equal(phase('  Installing build dependencies: started')?.phase, 'prepare');
    assert.deepEqual(phase('Building wheel for diskcache (pyproject.toml): started'), { phase: 'build', message: 'building diskcache' });
    assert.equal(phase('Installing collected packages: numpy, pygls, starcoder-lsp')?.phase, 'install');
    assert.equal(phase('Successfully installed numpy-2.4.6 starcoder-lsp-0.1.0')?.phase, 'done');
    assert.equal(phase('  Stored in directory: /root/.cache/pip/wheels/ab'), undefined);
    assert.equal(phase(''), undefined);
  });

  it('says why it failed in a sentence', () => {
    const compile = pipFailure(['  CMake Error at CMakeLists.txt:1', 'ERROR: Failed building wheel for llama-cpp-python'], 'cpu', index);
    assert.match(compile, /llama\.cpp did not compile.*C\/C\+\+ compiler/);
    assert.match(pipFailure(['ERROR: Failed building wheel for llama-cpp-python'], 'cuda', index), /CUDA toolkit/);
    const offline = pipFailure(['ERROR: Could not find a version that satisfies the requirement pygls<3,>=2.1 (from starcoder-lsp) (from versions: none)',
      'ERROR: No matching distribution found for pygls<3,>=2.1'], 'cpu', { kind: 'file', spec: '/w/x.whl', label: 'x.whl' });
    assert.match(offline, /could not find a package in the index or PIP_FIND_LINKS: No matching distribution found for pygls/);
    assert.match(offline, /PIP_NO_INDEX=1/);
    assert.equal(pipFailure(['boom', 'ERROR: something else'], 'cpu', index), 'pip failed: something else');
    assert.equal(pipFailure([], 'cpu', index), 'pip failed (see the StarCoder log)');
  });
});

describe('the model after an install', () => {
  const entry = (name: string, downloaded: boolean, isDefault = false) =>
    ({ name, isDefault, family: 'qwen2.5-coder', fim: true, params: '0.5B', size: '491.4 MB', source: 'pypi', local: downloaded ? 'verified' : '-', downloaded });
  const entries = [entry('starcoder2-3b', false), entry('qwen2.5-coder-0.5b', false, true), entry('qwen2.5-coder-1.5b', true)];
  it('pulls the configured model, or the default, only when it is not on disk', () => {
    assert.equal(modelToPull(null, entries)?.name, 'qwen2.5-coder-0.5b');
    assert.equal(modelToPull('starcoder2-3b', entries)?.name, 'starcoder2-3b');
    assert.equal(modelToPull('qwen2.5-coder-1.5b', entries), undefined);
  });
  it('never pulls for a .gguf path or an unknown name', () => {
    assert.equal(modelToPull('/models/qwen.gguf', entries), undefined);
    assert.equal(modelToPull('no-such-model', entries), undefined);
  });
});

describe('the record of the install', () => {
  it('reads installed.json, and nothing from a broken one', () => {
    const text = JSON.stringify({ venv: '/s/server/venv-1', version: '0.1.0', from: 'starcoder-lsp>=0.1.0', build: 'cuda', python: '/usr/bin/python3', installedAt: 'x' });
    assert.deepEqual(parseInstalled(text), { venv: '/s/server/venv-1', version: '0.1.0', from: 'starcoder-lsp>=0.1.0', build: 'cuda', python: '/usr/bin/python3', installedAt: 'x' });
    assert.equal(parseInstalled(JSON.stringify({ venv: '/v', version: '1', build: 'rocm' }))?.build, 'cpu');
    for (const bad of [undefined, '', '{', '[]', JSON.stringify({ version: '0.1.0' })]) assert.equal(parseInstalled(bad), undefined, bad);
  });

  it('reads --version and formats elapsed time', () => {
    assert.equal(parseVersionOutput('starcoder-lsp 0.1.0\n'), '0.1.0');
    assert.equal(parseVersionOutput('nope'), undefined);
    assert.equal(elapsed(65_400), '1:05');
    assert.equal(elapsed(-1), '0:00');
  });

  it('runs the installed server after the workspace venv and before PATH', () => {
    const managed = '/s/server/venv-1/bin/starcoder-lsp';
    const exists = (set: string[]) => (f: string) => set.includes(f);
    const base = { workspaceFolders: ['/ws'], envPath: '/usr/bin', platform: 'linux' as const, trusted: true, home: '/home/ada', managedServer: managed };
    const r = resolveServerCommand({ ...base, isExecutable: exists([managed, '/usr/bin/starcoder-lsp']) });
    assert.ok(r.ok && r.launcher.source === 'managed' && r.launcher.command === managed);
    const ws = resolveServerCommand({ ...base, isExecutable: exists([managed, '/ws/.venv/bin/starcoder-lsp']) });
    assert.ok(ws.ok && ws.launcher.source === 'workspace-venv');
    const setting = resolveServerCommand({ ...base, serverPath: '/opt/sc', isExecutable: exists([managed, '/opt/sc']) });
    assert.ok(setting.ok && setting.launcher.source === 'setting');
    const gone = resolveServerCommand({ ...base, isExecutable: exists([]) });
    assert.ok(!gone.ok && gone.reason === 'not-found' && gone.tried.includes(managed));
  });
});

describe('package.json', () => {
  it('registers Install Server and Reinstall Server as starcoder.* commands', () => {
    const cmds = pkg.contributes.commands;
    assert.deepEqual(cmds.find((c) => c.command === 'starcoder.installServer'), { command: 'starcoder.installServer', title: 'Install Server', category: 'StarCoder' });
    assert.deepEqual(cmds.find((c) => c.command === 'starcoder.reinstallServer'), { command: 'starcoder.reinstallServer', title: 'Reinstall Server', category: 'StarCoder' });
  });

  it('reads installFrom from the user\'s settings only', () => {
    assert.equal(pkg.contributes.configuration.properties['starcoder.server.installFrom'].scope, 'machine');
    assert.ok(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.includes('starcoder.server.installFrom'));
  });
});
