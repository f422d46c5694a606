import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** A helper service running as a child Node process (for ESM-only packages jest's CommonJS runtime cannot load). */
export interface ChildService {
  /** The first JSON line the child printed (at least `{ port }`). */
  info: { port: number } & Record<string, unknown>;
  /** Everything the child wrote to stdout/stderr after its ready line. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `node tests/support/<script>` with `env` added, waits for its ready line (one JSON object on stdout), and
 * fails after `timeoutMs` with whatever the child wrote. NODE_OPTIONS is cleared so jest's flags do not leak in.
 */
export async function startChildService(script: string, env: Record<string, string> = {}, timeoutMs = 15_000): Promise<ChildService> {
  const child: ChildProcess = spawn(process.execPath, [path.join(__dirname, script)], {
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let after = '';
  let ready = false;
  child.stderr?.on('data', (d: Buffer) => {
    if (ready) after += d.toString();
    else out += d.toString();
  });
  const info = await new Promise<ChildService['info']>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      if (ready) {
        after += d.toString();
        return;
      }
      out += d.toString();
      const line = out.split('\n').find((l) => l.trim().startsWith('{'));
      if (line) {
        ready = true;
        clearTimeout(timer);
        resolve(JSON.parse(line) as ChildService['info']);
      }
    });
    child.once('exit', (code) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`${script} exited with ${code} before it was ready:\n${out}`));
      }
    });
  });
  return {
    info,
    output: () => after,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
