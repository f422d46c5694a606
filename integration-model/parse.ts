import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { invalidModel, type ModelIssue } from './errors';
import { isRecord, parsePointer } from '../adapter';

/** Maps a JSON Pointer in the parsed document back to a line and column of the submitted text. */
export type Locator = (pointer: string) => { line: number; column: number } | undefined;

export interface ParsedSource {
  document: Record<string, unknown>;
  locate: Locator;
}

/** Aliases let a few bytes of YAML expand to gigabytes; a real OpenAPI document needs few, if any. */
const MAX_ALIAS_COUNT = 100;

/**
 * Parses YAML or JSON text (JSON is YAML 1.2, so one parser serves both and gives positions for either), or takes
 * an already parsed object. Duplicate keys are an error, because which one wins differs between tools.
 * @throws IntegrationModelError INVALID_MODEL when the text does not parse or is not an object.
 */
export function parseSource(source: string | object): ParsedSource {
  if (typeof source !== 'string') {
    if (!isRecord(source)) throw invalidModel([{ path: '', message: 'a model must be an object (an OpenAPI document)' }]);
    // A caller's object is never mutated: conversion and dereferencing work on copies.
    return { document: structuredClone(source), locate: () => undefined };
  }
  const lineCounter = new LineCounter();
  const parsed = parseDocument(source, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (parsed.errors.length > 0) {
    throw invalidModel(
      parsed.errors.map((e): ModelIssue => {
        const pos = e.linePos?.[0];
        // prettyErrors adds the position and a source excerpt to the message; we carry the position as fields.
        const message = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
        return { path: '', message: `not valid YAML or JSON: ${message}`, ...(pos ? { line: pos.line, column: pos.col } : {}) };
      }),
    );
  }
  let value: unknown;
  try {
    value = parsed.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    throw invalidModel([{ path: '', message: `not valid YAML or JSON: ${(e as Error).message}` }]);
  }
  if (!isRecord(value)) throw invalidModel([{ path: '', message: 'a model must be an object (an OpenAPI document)' }]);

  const locate: Locator = (pointer) => {
    let tokens: string[];
    try {
      tokens = parsePointer(pointer);
    } catch {
      return undefined;
    }
    // Walk as deep as the text goes: an error about a missing property points at the object that lacks it.
    let node: unknown = parsed.contents;
    let offset = (node as YamlNode | null)?.range?.[0];
    for (const token of tokens) {
      let next: unknown;
      let at: number | undefined;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === token);
        if (!pair) break;
        next = pair.value;
        at = (pair.key as YamlNode).range?.[0];
      } else if (isSeq(node)) {
        next = node.items[Number(token)];
        at = (next as YamlNode | undefined)?.range?.[0];
      } else {
        break;
      }
      if (at === undefined) break;
      offset = at;
      node = next;
    }
    if (offset === undefined || (tokens.length > 0 && node === parsed.contents)) return undefined;
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  return { document: value, locate };
}
