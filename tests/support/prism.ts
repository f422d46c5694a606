/**
 * Prism (@stoplight/prism-cli) as a spec-validating mock on loopback: every request is checked against the
 * OpenAPI document it serves (path, method, parameters, body, security), and answered with an example or a
 * response generated from the schema. A request that breaks the document gets an error answer (`--errors`),
 * so a test that expects 2xx proves the request was valid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectPath } from '../../adapter/paths';
import { closedPort } from './loopback-server';

export interface PrismMock {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Starts `prism mock` for a spec file or an in-memory document (written to a temporary file). */
export async function startPrism(spec: string | object): Promise<PrismMock> {
  let file: string;
  let tmp: string | undefined;
  if (typeof spec === 'string') {
    file = spec;
  } else {
    tmp = mkdtempSync(join(tmpdir(), 'provisio-prism-'));
    file = join(tmp, 'spec.json');
    writeFileSync(file, JSON.stringify(spec));
  }
  const port = await closedPort();
  const child: ChildProcess = spawn(projectPath('node_modules', '.bin', 'prism'), ['mock', file, '-h', '127.0.0.1', '-p', String(port), '--errors'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
  });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      output += d.toString('utf8');
      if (/Prism is listening on/.test(output)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`prism exited (${String(code)}):\n${output}`)));
  });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`prism did not start in 30 s:\n${output}`)), 30_000).unref());
  try {
    await Promise.race([ready, timeout]);
  } catch (e) {
    child.kill('SIGKILL');
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = (): void => {
          if (tmp) rmSync(tmp, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
      }),
  };
}

type Json = Record<string, unknown>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

/**
 * VMware's generator writes actions into path keys (`/api/vcenter/vm/{vm}/power?action=start`), which Prism cannot
 * route (it answers 405). This rewrites a copy of such a document so Prism can serve it, keeping VMware's schemas:
 * the operations sharing a base path and method become one operation with an `action` query parameter (an enum of
 * the actions; required unless the base path also had an operation without one, as POST /api/vcenter/vm create
 * beside ?action=clone), request bodies joined with oneOf, and responses joined (the first definition of a
 * status wins). Legacy `~action` keys are handled the same way under their own parameter name.
 */
export function rewriteActionPaths(source: Json): Json {
  const doc = structuredClone(source);
  const paths = doc['paths'] as Record<string, Json>;
  const out: Record<string, Json> = {};
  const groups = new Map<string, { base: string; method: string; param: string; plain?: Json; actions: { action: string; op: Json }[] }>();
  for (const [key, item] of Object.entries(paths)) {
    const [base, query] = key.split('?') as [string, string | undefined];
    for (const method of METHODS) {
      const op = item[method] as Json | undefined;
      if (!op) continue;
      const g = groups.get(`${base} ${method}`) ?? { base, method, param: 'action', actions: [] };
      groups.set(`${base} ${method}`, g);
      if (query === undefined) {
        g.plain = op;
        continue;
      }
      const [param, action] = query.split('=') as [string, string];
      g.param = param;
      g.actions.push({ action, op });
    }
    // Path-level parameters (none in VMware's output, but keep them) move with the base path.
    if (item['parameters'] !== undefined) (out[key.split('?')[0] as string] ??= {})['parameters'] = item['parameters'];
  }
  for (const g of groups.values()) {
    const target = (out[g.base] ??= {});
    if (g.actions.length === 0) {
      target[g.method] = g.plain;
      continue;
    }
    const ops = [...(g.plain ? [g.plain] : []), ...g.actions.map((a) => a.op)];
    const merged: Json = { ...(ops[0] as Json) };
    const params = ((merged['parameters'] as Json[] | undefined) ?? []).filter((p) => !(p['in'] === 'query' && p['name'] === g.param));
    params.push({ name: g.param, in: 'query', required: g.plain === undefined, schema: { type: 'string', enum: g.actions.map((a) => a.action) } });
    merged['parameters'] = params;
    const bodies = ops.map((o) => o['requestBody'] as Json | undefined).filter((b): b is Json => b !== undefined);
    if (bodies.length > 1) {
      const schemas = bodies.map((b) => ((b['content'] as Record<string, Json>)['application/json'] ?? {})['schema']);
      merged['requestBody'] = { required: true, content: { 'application/json': { schema: { oneOf: schemas } } } };
    } else if (bodies.length === 1) {
      merged['requestBody'] = bodies[0];
    }
    const responses: Json = {};
    for (const o of ops) for (const [status, r] of Object.entries(o['responses'] as Json)) responses[status] ??= r;
    merged['responses'] = responses;
    target[g.method] = merged;
  }
  doc['paths'] = out;
  return doc;
}
