import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compiledTask, stepContext } from '../../tests/support/executors';
import { createTestDatabase, type TestDatabase } from '../../tests/support/db';
import type { ScriptTask } from '../document';
import type { TaskExecutor } from '../engine/executor';
import { createScriptExecutor, defaultScriptRuntimes } from './script';
import { createScriptModuleVersion, type ScriptRuntime } from './script-modules';

let t: TestDatabase;
let run: TaskExecutor;

async function save(name: string, runtime: ScriptRuntime, body: string, platform?: 'linux' | 'windows' | 'any'): Promise<number> {
  return (await createScriptModuleVersion(t.db, { name, runtime, body, createdBy: 'test', ...(platform ? { platform } : {}) })).version;
}

function task(module: string, version = 1): ScriptTask {
  return { kind: 'script', script: { module, version } };
}

async function exec(module: string, input: Record<string, unknown> = {}, opts: { version?: number; timeoutMs?: number; executor?: TaskExecutor } = {}) {
  const ctx = stepContext();
  const result = await (opts.executor ?? run)(compiledTask(task(module, opts.version), { timeoutMs: opts.timeoutMs ?? 20_000 }), input, ctx);
  return { result, ctx };
}

/** Whether `pid` runs; a zombie (killed, not yet reaped by the container's init) counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

function message(result: unknown): string {
  return (result as { error: { message: string } }).error.message;
}

beforeAll(async () => {
  t = await createTestDatabase();
  run = createScriptExecutor({ db: t.db, killGraceMs: 300 });
  process.env['PROVISIO_TEST_LEAK'] = 'must-not-reach-scripts';
  await save(
    'bash-echo',
    'bash',
    `#!/bin/bash
set -eu
printf '{"user":"%s","count":%s,"tags":%s,"run":"%s","leak":"%s","cwd_is_tmp":%s}\\n' "$PARAM_user" "$PARAM_count" "$PARAM_tags" "$PROVISIO_RUN_ID" "\${PROVISIO_TEST_LEAK:-}" "$([ "$PWD" = "$TMPDIR" ] && echo true || echo false)"
`,
  );
  await save(
    'node-echo',
    'node',
    `const p = JSON.parse(process.env.PROVISIO_PARAMS);
console.log(JSON.stringify({ params: p, env_user: process.env.PARAM_user, key: process.env.PROVISIO_IDEMPOTENCY_KEY, database: process.env.DATABASE_URL ?? null }));`,
  );
  await save(
    'py-echo',
    'python3',
    `import json, os
p = json.loads(os.environ["PROVISIO_PARAMS"])
print(json.dumps({"params": p, "flag": os.environ["PARAM_flag"], "attempt": os.environ["PROVISIO_ATTEMPT"]}))`,
  );
  await save('not-json', 'bash', `echo "Connecting to sccm01..."; echo "done: 3 devices"`);
  await save('fails', 'bash', `echo '{"partial":true}'; echo "first line of trouble" >&2; echo "Access denied for $PARAM_password" >&2; exit 3`);
  await save('silent', 'python3', `import sys; sys.stderr.write("nothing to say\\n")`);
  await save('sleeper', 'bash', `sleep 30 & echo $! > "$PARAM_pidfile"; wait`);
  await save('chatty', 'node', `process.stdout.write('x'.repeat(4096)); setInterval(() => process.stdout.write('y'.repeat(4096)), 1);`);
  await save('win-only', 'pwsh', `Write-Output '{}'`, 'windows');
  await save('ps', 'pwsh', `Write-Output '{"ok":true}'`);
});
afterAll(async () => {
  delete process.env['PROVISIO_TEST_LEAK'];
  await t.drop();
});

describe('script executor (bash, node, python3 subprocesses)', () => {
  test('bash: parameters as PARAM_<name> (non-strings as JSON), JSON stdout is the output, no worker env leaks', async () => {
    const { result } = await exec('bash-echo', { user: 'pparker', count: 3, tags: ['a', 'b'] });
    expect(result).toEqual({ ok: true, output: { user: 'pparker', count: 3, tags: ['a', 'b'], run: 'run-1', leak: '', cwd_is_tmp: true } });
  });

  test('node: PROVISIO_PARAMS holds every parameter; DATABASE_URL is not passed on', async () => {
    const input = { user: 'jdoe', nested: { a: [1, null] } };
    const { result } = await exec('node-echo', input);
    expect(result).toEqual({ ok: true, output: { params: input, env_user: 'jdoe', key: 'run-1:t1:1', database: null } });
  });

  test('python3: parameters and attempt in the environment', async () => {
    const { result } = await exec('py-echo', { flag: true });
    expect(result).toEqual({ ok: true, output: { params: { flag: true }, flag: 'true', attempt: '1' } });
  });

  test('stdout that is not JSON fails with SCRIPT_FAILED and the first bytes of the output', async () => {
    const { result } = await exec('not-json');
    expect(result).toMatchObject({ ok: false, error: { code: 'SCRIPT_FAILED' } });
    expect(message(result)).toBe('script not-json v1 (bash) printed output that is not JSON; stdout begins "Connecting to sccm01...\\ndone: 3 devices\\n"');
  });

  test('a non-zero exit fails with the exit code, stdout head and stderr tail; secret parameters are blanked out', async () => {
    const { result, ctx } = await exec('fails', { password: 'Hunter2-secret', user: 'jdoe' });
    expect(result).toMatchObject({ ok: false, error: { code: 'SCRIPT_FAILED' } });
    const m = message(result);
    expect(m).toContain('script fails v1 (bash) exited with code 3');
    expect(m).toContain('stdout begins "{\\"partial\\":true}\\n"');
    expect(m).toContain('first line of trouble');
    expect(m).toContain('Access denied for [redacted]');
    expect(m).not.toContain('Hunter2-secret');
    expect(JSON.stringify(ctx.lines)).not.toContain('Hunter2-secret');
    // Not marked non-retryable: the task's retry policy may list SCRIPT_FAILED.
    expect((result as { error: { retryable?: boolean } }).error.retryable).toBeUndefined();
  });

  test('empty stdout fails, naming the stderr tail', async () => {
    const { result } = await exec('silent');
    expect(message(result)).toBe('script silent v1 (python3) printed nothing on stdout; it must print its result as JSON; stderr ends "nothing to say"');
  });

  test('past the timeout the whole process group is killed: TIMEOUT', async () => {
    const pidfile = join(tmpdir(), `provisio-sleeper-${process.pid}.pid`);
    const started = Date.now();
    const { result } = await exec('sleeper', { pidfile }, { timeoutMs: 500 });
    expect(result).toEqual({ ok: false, error: { code: 'TIMEOUT', message: 'script sleeper v1 (bash) ran past its timeout of 500 ms and was killed' } });
    expect(Date.now() - started).toBeLessThan(5000);
    // The background `sleep` the script started is gone too.
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  });

  test('an aborted step kills the script: TIMEOUT', async () => {
    const pidfile = join(tmpdir(), `provisio-sleeper-abort-${process.pid}.pid`);
    const ctx = stepContext();
    const pending = run(compiledTask(task('sleeper'), { timeoutMs: 30_000 }), { pidfile }, ctx);
    setTimeout(() => ctx.controller.abort(), 300);
    expect(await pending).toEqual({ ok: false, error: { code: 'TIMEOUT', message: 'script sleeper v1 (bash) was killed: the attempt was aborted' } });
  });

  test('stdout beyond the limit kills the script', async () => {
    const small = createScriptExecutor({ db: t.db, killGraceMs: 200, maxStdoutBytes: 10_000 });
    const { result } = await exec('chatty', {}, { executor: small, timeoutMs: 10_000 });
    expect(result).toMatchObject({ ok: false, error: { code: 'SCRIPT_FAILED', message: expect.stringContaining('printed more than 10000 bytes on stdout and was killed') } });
  });

  test('unknown module or version, a platform mismatch and a missing runtime fail at once, never retried', async () => {
    expect(await exec('nope')).toMatchObject({ result: { ok: false, error: { code: 'SCRIPT_FAILED', retryable: false, message: 'script module nope v1 does not exist' } } });
    expect(await exec('bash-echo', {}, { version: 9 })).toMatchObject({ result: { ok: false, error: { message: 'script module bash-echo v9 does not exist' } } });
    expect((await exec('win-only')).result).toMatchObject({ ok: false, error: { retryable: false, message: expect.stringContaining('is for windows') } });
    const noPwsh = createScriptExecutor({ db: t.db, runtimes: { pwsh: null } });
    expect((await exec('ps', {}, { executor: noPwsh })).result).toEqual({
      ok: false,
      error: { code: 'SCRIPT_FAILED', retryable: false, message: 'script ps v1 (pwsh): pwsh is not installed on this worker' },
    });
  });

  test('a parameter name that is not an environment variable name is INVALID_INPUT', async () => {
    expect((await exec('bash-echo', { 'bad-name': 1 })).result).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', retryable: false } });
  });

  test('the temporary directory is removed afterwards', async () => {
    await save('where', 'bash', `printf '{"dir":"%s"}' "$TMPDIR"`);
    const { result } = await exec('where');
    const dir = (result as { output: { dir: string } }).output.dir;
    expect(dir).toContain('provisio-script-');
    expect(existsSync(dir)).toBe(false);
  });
});

/**
 * PowerShell 7 is not in Debian's repositories, so a real pwsh is not run here. A `pwsh` shim on PATH (a bash script:
 * NOT PowerShell) stands in for the executable, to prove what the executor hands it: the command line, the script file
 * with the module's body and a .ps1 name, the parameters in the environment, and that its JSON stdout is the output.
 * Whether PowerShell itself then reads `$env:PARAM_x` and prints JSON is PowerShell's behaviour and is not verified.
 */
describe('script executor (pwsh)', () => {
  let shimDir: string;
  beforeAll(() => {
    shimDir = mkdtempSync(join(tmpdir(), 'pwsh-shim-'));
    const shim = join(shimDir, 'pwsh');
    writeFileSync(
      shim,
      `#!/bin/bash
# argv, the script file's name and body, one parameter: as JSON on stdout
file="\${@: -1}"
printf '{"argv":"%s","file":"%s","body64":"%s","user":"%s","params":%s}\n' "$*" "$(basename "$file")" "$(base64 -w0 "$file")" "$PARAM_user" "$PROVISIO_PARAMS"
`,
    );
    chmodSync(shim, 0o755);
  });
  afterAll(() => rmSync(shimDir, { recursive: true, force: true }));

  test('pwsh is found on PATH and started with -NoLogo -NoProfile -NonInteractive -File <module>.ps1; parameters in the environment', async () => {
    const before = process.env['PATH'];
    process.env['PATH'] = `${shimDir}:${before ?? ''}`;
    let found: string | null;
    try {
      found = defaultScriptRuntimes().pwsh;
    } finally {
      process.env['PATH'] = before;
    }
    expect(found).toBe(join(shimDir, 'pwsh'));
    const withPwsh = createScriptExecutor({ db: t.db, runtimes: { pwsh: found } });
    const { result } = await exec('ps', { user: 'alice' }, { executor: withPwsh });
    expect(result).toMatchObject({ ok: true, output: { user: 'alice', params: { user: 'alice' }, file: 'ps.ps1' } });
    expect(Buffer.from((result as { output: { body64: string } }).output.body64, 'base64').toString()).toBe(`Write-Output '{"ok":true}'`);
    const argv = (result as { output: { argv: string } }).output.argv.split(' ');
    expect(argv.slice(0, 4)).toEqual(['-NoLogo', '-NoProfile', '-NonInteractive', '-File']);
    expect(argv).toHaveLength(5);
  });

  test('without pwsh on PATH the runtime is reported missing, and a pwsh step names it', async () => {
    const before = process.env['PATH'];
    process.env['PATH'] = '/nonexistent-dir';
    try {
      expect(defaultScriptRuntimes().pwsh).toBeNull();
    } finally {
      process.env['PATH'] = before;
    }
  });
});
