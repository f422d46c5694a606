/**
 * The house rules of design.md, read from the import statements of every .ts file in the repository:
 *  - dependencies point one way, server → workflows → integration-model → adapter: no room imports a room above it;
 *  - a room is entered only through its index.ts: another room (or a sub-folder's module) never imports its internals;
 *  - the modules of server/ import each other without circles.
 * Type-only imports count: a type arrow pointing up is as much a dependency as a value one.
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');
const SKIP = new Set(['node_modules', 'dist', 'data', '.git', 'coverage']);
/** The rooms from the bottom up: a room may import only rooms at its own level or below. */
const ROOMS = ['adapter', 'integration-model', 'workflows', 'server'] as const;
type Room = (typeof ROOMS)[number];

function listTs(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) listTs(full, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** The file a relative specifier names, as the compiler (and jest's `.js` mapping) resolves it. */
function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), spec.replace(/\.js$/, ''));
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

const rel = (f: string): string => path.relative(ROOT, f).split(path.sep).join('/');
const roomOf = (f: string): Room | undefined => ROOMS.find((r) => rel(f).startsWith(`${r}/`));

interface ImportEdge {
  from: string;
  to: string;
  spec: string;
}

function readEdges(): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const file of listTs(ROOT)) {
    // preProcessFile reads import/export-from/import() specifiers without type-checking: fast over the whole tree.
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const ref of info.importedFiles) {
      const to = resolveImport(file, ref.fileName);
      if (to) edges.push({ from: rel(file), to: rel(to), spec: ref.fileName });
    }
  }
  return edges;
}

/** Every import cycle among `nodes`, each as the path that closes it (depth-first search, one report per back edge). */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

const edges = readEdges();

describe('the house rules', () => {
  test('the import reader sees the repository (guards the checks below against reading nothing)', () => {
    expect(edges.length).toBeGreaterThan(500);
    expect(edges).toContainEqual(expect.objectContaining({ from: 'server/main.ts', to: 'server/app.ts' }));
    for (const room of ROOMS) expect(edges.some((e) => roomOf(path.join(ROOT, e.from)) === room)).toBe(true);
  });

  test('dependencies point one way: server → workflows → integration-model → adapter', () => {
    const upward = edges
      .filter((e) => {
        const from = roomOf(path.join(ROOT, e.from));
        const to = roomOf(path.join(ROOT, e.to));
        return from !== undefined && to !== undefined && ROOMS.indexOf(to) > ROOMS.indexOf(from);
      })
      .map((e) => `${e.from} imports ${e.spec} (${e.to})`);
    expect(upward).toEqual([]);
  });

  test("another room is imported only through its index.ts", () => {
    const past = edges
      .filter((e) => {
        const from = roomOf(path.join(ROOT, e.from));
        const to = roomOf(path.join(ROOT, e.to));
        // Generated clients (`*.gen.ts`) import the one shared hey-api client runtime by the path the generator
        // writes; they are not edited by hand, and the runtime is their only outside import.
        const generated = e.from.endsWith('.gen.ts') && e.to.startsWith('adapter/clients/');
        return from !== undefined && to !== undefined && from !== to && e.to !== `${to}/index.ts` && !generated;
      })
      .map((e) => `${e.from} imports ${e.spec} (${e.to})`);
    expect(past).toEqual([]);
  });

  test('the modules of server/ import each other without circles', () => {
    const graph = new Map<string, string[]>();
    for (const e of edges) {
      if (!e.from.startsWith('server/') || !e.to.startsWith('server/')) continue;
      graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    }
    expect(findCycles(graph).map((c) => c.join(' → '))).toEqual([]);
  });

  test('the cycle finder finds a circle, and none in a tree (so an empty answer above means something)', () => {
    const circle = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
    ]);
    expect(findCycles(circle)).toEqual([['a', 'b', 'c', 'a']]);
    const tree = new Map([
      ['a', ['b', 'c']],
      ['b', ['c']],
    ]);
    expect(findCycles(tree)).toEqual([]);
  });

  test('each room names its exports: no `export *` in an index.ts', () => {
    const starred = listTs(ROOT)
      .filter((f) => path.basename(f) === 'index.ts' && roomOf(f) !== undefined)
      .filter((f) => /^\s*export\s+\*\s+from/m.test(readFileSync(f, 'utf8')))
      .map(rel);
    expect(starred).toEqual([]);
  });
});
