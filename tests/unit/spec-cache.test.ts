import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { projectPath } from '../../adapter';
import { loadSpec } from '../../server/spec';

const CACHE_DIR = projectPath('node_modules', '.cache', 'provisio', 'spec');

describe('loadSpec', () => {
  const dir = mkdtempSync(join(tmpdir(), 'provisio-spec-'));
  // A name of its own, so the cache entries this test makes are only ever its own.
  const name = `spec-cache-test-${process.pid}.yaml`;
  const path = join(dir, name);
  const entries = () => readdirSync(CACHE_DIR).filter((f) => f.startsWith(`${name}-`));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    for (const f of entries()) rmSync(join(CACHE_DIR, f), { force: true });
  });

  test('answers what the YAML says, from the cache once parsed, and a fresh object each time', () => {
    const yaml = 'openapi: 3.0.3\ninfo: { title: t, version: "1" }\npaths:\n  /a:\n    get:\n      operationId: getA\n      responses: { "200": { description: ok } }\n';
    writeFileSync(path, yaml);
    const first = loadSpec(path);
    expect(first).toEqual(parse(yaml));
    expect(entries()).toHaveLength(1);
    const second = loadSpec(path);
    expect(second).toEqual(first);
    expect(second).not.toBe(first);
    // The cached copy is what the second call read: change it and the change shows.
    writeFileSync(join(CACHE_DIR, entries()[0]!), JSON.stringify({ ...first, 'x-from-cache': true }));
    expect(loadSpec(path)).toMatchObject({ 'x-from-cache': true });
  });

  test('an edited spec is parsed again and replaces its earlier cache entry', () => {
    writeFileSync(path, 'openapi: 3.0.3\ninfo: { title: edited, version: "2" }\npaths: {}\n');
    const before = entries();
    const edited = loadSpec(path);
    expect(edited).toEqual({ openapi: '3.0.3', info: { title: 'edited', version: '2' }, paths: {} });
    expect(entries()).toHaveLength(1);
    expect(entries()).not.toEqual(before);
  });

  test('the service spec read through the cache equals its YAML', () => {
    expect(loadSpec()).toEqual(parse(readFileSync(projectPath('openapi', 'provisio.yaml'), 'utf8')));
  });
});
