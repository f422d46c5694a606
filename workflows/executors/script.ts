/**
 * The `script` task: runs a stored script module (`script: {module, version}`, see script-modules.ts) in a
 * subprocess with the module's runtime: `pwsh` (PowerShell, when installed on the worker), `bash`, `node` or
 * `python3`. A module names its runtime; a `pwsh` module on a worker without pwsh fails at once, as does a
 * `windows` module on a Linux worker (and the reverse), instead of half-running.
 *
 * The script's environment, and nothing else of the worker's (which holds database URLs and keys):
 * - `PARAM_<name>` for each incoming variable `<name>`, strings as they are, anything else as JSON. The prefix
 *   keeps a parameter from ever replacing PATH, LD_PRELOAD, NODE_OPTIONS, PYTHONPATH or the like;
 * - `PROVISIO_PARAMS`: all parameters as one JSON object (easiest to read from node and python3);
 * - `PROVISIO_RUN_ID`, `PROVISIO_STEP_ID`, `PROVISIO_ATTEMPT`, `PROVISIO_IDEMPOTENCY_KEY`;
 * - `PATH`, `HOME`, `LANG`, `LC_ALL`, `TZ` from the worker; `TMPDIR` is a fresh directory, also the working
 *   directory, removed afterwards.
 *
 * Outcome: exit code 0 and stdout that is one JSON value -> success, output = that value. Otherwise SCRIPT_FAILED,
 * with the first bytes of stdout and the tail of stderr in the message (values of secret-looking parameters, such as
 * `password` or `api_token`, are blanked out of both). Past the timeout (the task's, else the default) or when the
 * step is aborted, the whole process group gets SIGTERM, then SIGKILL after a grace period: TIMEOUT.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { redact, type Queryable } from '../../adapter';
import type { ScriptTask } from '../document';
import type { StepResult, TaskExecutor } from '../engine/executor';
import { failed, head, succeeded, tail } from './results';
import { getScriptModule, type ScriptModule, type ScriptRuntime } from './script-modules';

/** Used when the task has no timeout. Milliseconds. */
export const DEFAULT_SCRIPT_TIMEOUT_MS = 5 * 60_000;
/** Between SIGTERM and SIGKILL. Milliseconds. */
export const DEFAULT_KILL_GRACE_MS = 2_000;
/** stdout beyond this fails the step: the output is meant to be a result, not a log. Bytes. */
export const MAX_SCRIPT_STDOUT_BYTES = 1024 * 1024;
/** How much of stderr is kept for the error message (its tail). Bytes. */
const STDERR_TAIL_BYTES = 4096;

export const PARAM_ENV_PREFIX = 'PARAM_';
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface ScriptExecutorDeps {
  db: Queryable;
  /**
   * The command for each runtime; null marks a runtime as not installed. Defaults: pwsh when found on PATH,
   * `bash`, this Node's executable, `python3`.
   */
  runtimes?: Partial<Record<ScriptRuntime, string | null>>;
  /** Used when the task has no timeout. Milliseconds. */
  defaultTimeoutMs?: number;
  killGraceMs?: number;
  maxStdoutBytes?: number;
}

const RUNTIME_ARGS: Record<ScriptRuntime, { ext: string; args: (file: string) => string[] }> = {
  pwsh: { ext: 'ps1', args: (f) => ['-NoLogo', '-NoProfile', '-NonInteractive', '-File', f] },
  bash: { ext: 'sh', args: (f) => [f] },
  node: { ext: 'cjs', args: (f) => [f] },
  python3: { ext: 'py', args: (f) => [f] },
};

/** The first executable called `name` on PATH, or null. */
export function findOnPath(name: string, path = process.env['PATH'] ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** The runtimes this worker can run, as commands (null: not installed). */
export function defaultScriptRuntimes(): Record<ScriptRuntime, string | null> {
  return { pwsh: findOnPath('pwsh'), bash: findOnPath('bash'), node: process.execPath, python3: findOnPath('python3') };
}

function envValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v) ?? 'null';
}

/** The worker's environment the script may see; everything else (DATABASE_URL, keys, NODE_OPTIONS) stays out. */
function baseEnv(dir: string): Record<string, string> {
  const env: Record<string, string> = { TMPDIR: dir };
  for (const k of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'SYSTEMROOT', 'WINDIR']) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** Values of secret-looking parameters (by the log redaction's rule), longest first, to blank out of messages. */
function secretValues(params: Record<string, unknown>): string[] {
  const redacted = redact(params) as Record<string, unknown>;
  const out: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (redacted[k] !== '[redacted]') continue;
    const s = envValue(v);
    if (s.length >= 3) out.push(s);
  }
  return out.sort((a, b) => b.length - a.length);
}

function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[redacted]');
  return out;
}

interface ProcessOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stdoutOverflow: boolean;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
  spawnError?: NodeJS.ErrnoException;
}

function runProcess(
  command: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number; signal: AbortSignal; killGraceMs: number; maxStdout: number },
): Promise<ProcessOutcome> {
  return new Promise((resolve) => {
    // Its own process group, so a kill also reaches whatever the script started (a `sleep`, a pipeline).
    const group = process.platform !== 'win32';
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: group, windowsHide: true });
    const out: Buffer[] = [];
    let outSize = 0;
    let stdoutOverflow = false;
    let errTail = Buffer.alloc(0);
    let timedOut = false;
    let aborted = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;

    const signalGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        if (group) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // already gone
      }
    };
    const kill = (): void => {
      if (killTimer) return;
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), opts.killGraceMs);
    };

    child.stdout.on('data', (c: Buffer) => {
      if (stdoutOverflow) return;
      outSize += c.length;
      if (outSize > opts.maxStdout) {
        stdoutOverflow = true;
        out.push(c.subarray(0, Math.max(0, c.length - (outSize - opts.maxStdout))));
        kill();
        return;
      }
      out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      errTail = Buffer.concat([errTail, c]);
      if (errTail.length > STDERR_TAIL_BYTES) errTail = errTail.subarray(errTail.length - STDERR_TAIL_BYTES);
    });

    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    const onAbort = (): void => {
      aborted = true;
      kill();
    };
    if (opts.signal.aborted) onAbort();
    else opts.signal.addEventListener('abort', onAbort, { once: true });

    const finish = (code: number | null, sig: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal.removeEventListener('abort', onAbort);
      // Leftovers of the group (a background job that ignored SIGTERM) must not outlive the step.
      if (timedOut || aborted || stdoutOverflow) signalGroup('SIGKILL');
      resolve({
        code,
        signal: sig,
        stdout: Buffer.concat(out).toString('utf8'),
        stdoutOverflow,
        stderr: errTail.toString('utf8'),
        timedOut,
        aborted,
        ...(spawnError ? { spawnError } : {}),
      });
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
      finish(null, null);
    });
    child.on('close', (code, sig) => finish(code, sig));
    // A grandchild that keeps the pipes open must not keep the step waiting after the script itself is gone.
    child.on('exit', (code, sig) => {
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code, sig);
      }, opts.killGraceMs).unref();
    });
  });
}

function describe(m: ScriptModule): string {
  return `script ${m.name} v${m.version} (${m.runtime})`;
}

export function createScriptExecutor(deps: ScriptExecutorDeps): TaskExecutor {
  const runtimes = { ...defaultScriptRuntimes(), ...deps.runtimes };
  const defaultTimeout = deps.defaultTimeoutMs ?? DEFAULT_SCRIPT_TIMEOUT_MS;
  const killGraceMs = deps.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const maxStdout = deps.maxStdoutBytes ?? MAX_SCRIPT_STDOUT_BYTES;
  // Versions never change once saved, so a loaded one can be kept for the life of the process.
  const cache = new Map<string, ScriptModule>();

  async function load(name: string, version: number): Promise<ScriptModule | undefined> {
    const key = `${name}\u0000${version}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const m = await getScriptModule(deps.db, name, version);
    if (m) cache.set(key, m);
    return m;
  }

  return async (compiled, input, ctx): Promise<StepResult> => {
    const task = compiled.task as Pick<ScriptTask, 'kind' | 'script'>;
    if (task.kind !== 'script') return failed('INVALID_INPUT', `task '${compiled.id}' is not a script task`, { retryable: false });
    const { module: name, version } = task.script;
    const m = await load(name, version);
    if (!m) return failed('SCRIPT_FAILED', `script module ${name} v${version} does not exist`, { retryable: false });
    const wrongPlatform = (m.platform === 'windows' && process.platform !== 'win32') || (m.platform === 'linux' && process.platform === 'win32');
    if (wrongPlatform) return failed('SCRIPT_FAILED', `${describe(m)} is for ${m.platform}; this worker runs ${process.platform}`, { retryable: false });
    const command = runtimes[m.runtime];
    if (!command) return failed('SCRIPT_FAILED', `${describe(m)}: ${m.runtime} is not installed on this worker`, { retryable: false });

    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(input)) {
      if (!PARAM_NAME.test(k)) return failed('INVALID_INPUT', `script parameter '${k}' is not a valid environment variable name`, { retryable: false });
      if (v === undefined) continue;
      const s = envValue(v);
      if (s.includes('\u0000')) return failed('INVALID_INPUT', `script parameter '${k}' contains a NUL character`, { retryable: false });
      env[`${PARAM_ENV_PREFIX}${k}`] = s;
    }
    const secrets = secretValues(input);

    const dir = await mkdtemp(join(tmpdir(), 'provisio-script-'));
    try {
      const file = join(dir, `${m.name}.${RUNTIME_ARGS[m.runtime].ext}`);
      await writeFile(file, m.body, { mode: 0o600 });
      const fullEnv = {
        ...baseEnv(dir),
        ...env,
        PROVISIO_PARAMS: JSON.stringify(input),
        PROVISIO_RUN_ID: ctx.runId,
        PROVISIO_STEP_ID: ctx.stepId,
        PROVISIO_ATTEMPT: String(ctx.attempt),
        PROVISIO_IDEMPOTENCY_KEY: ctx.idempotencyKey,
      };
      const timeoutMs = compiled.timeoutMs ?? defaultTimeout;
      const started = ctx.now();
      const r = await runProcess(command, RUNTIME_ARGS[m.runtime].args(file), { cwd: dir, env: fullEnv, timeoutMs, signal: ctx.signal, killGraceMs, maxStdout });
      ctx.logger.info('script finished', { runId: ctx.runId, stepId: ctx.stepId, module: m.name, version: m.version, exitCode: r.code, signal: r.signal, ms: ctx.now() - started });
      return classify(m, r, timeoutMs, maxStdout, secrets);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}

function classify(m: ScriptModule, r: ProcessOutcome, timeoutMs: number, maxStdout: number, secrets: string[]): StepResult {
  const what = describe(m);
  const stdoutHead = (): string => (r.stdout.trim() === '' ? 'nothing on stdout' : `stdout begins ${JSON.stringify(scrub(head(r.stdout, 200), secrets))}`);
  const stderrTail = (): string => (r.stderr.trim() === '' ? '' : `; stderr ends ${JSON.stringify(scrub(tail(r.stderr.trimEnd(), 500), secrets))}`);
  if (r.spawnError) return failed('SCRIPT_FAILED', `${what} could not be started (${r.spawnError.code ?? r.spawnError.message})`, { retryable: false });
  if (r.timedOut) return failed('TIMEOUT', `${what} ran past its timeout of ${timeoutMs} ms and was killed`);
  if (r.aborted) return failed('TIMEOUT', `${what} was killed: the attempt was aborted`);
  if (r.stdoutOverflow) return failed('SCRIPT_FAILED', `${what} printed more than ${maxStdout} bytes on stdout and was killed; ${stdoutHead()}`);
  if (r.code !== 0) {
    const how = r.code === null ? `was killed by ${r.signal ?? 'a signal'}` : `exited with code ${r.code}`;
    return failed('SCRIPT_FAILED', `${what} ${how}; ${stdoutHead()}${stderrTail()}`);
  }
  const text = r.stdout.trim();
  if (text === '') return failed('SCRIPT_FAILED', `${what} printed nothing on stdout; it must print its result as JSON${stderrTail()}`);
  try {
    return succeeded(JSON.parse(text) as unknown);
  } catch {
    return failed('SCRIPT_FAILED', `${what} printed output that is not JSON; ${stdoutHead()}${stderrTail()}`);
  }
}
