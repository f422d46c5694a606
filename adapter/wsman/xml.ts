/**
 * The little XML a WS-Management exchange needs: elements, attributes and text, names reduced to their local part
 * (WS-Man peers choose their own prefixes, so only the local name and nesting are compared). No DTDs, no entities
 * beyond the five predefined and numeric ones: a SOAP 1.2 message may carry neither (SOAP 1.2 part 1, 5), so a DOCTYPE
 * is refused rather than expanded.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** Thrown when the text is not well-formed enough to read, or carries a DOCTYPE. */
export class XmlReadError extends Error {}

const localName = (qname: string): string => qname.slice(qname.indexOf(':') + 1);

export function decodeXmlText(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_m, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[e.toLowerCase()] as string;
  });
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

/** @throws XmlReadError for a DOCTYPE, a mismatched or unclosed tag, or no root element. */
export function readXml(text: string): XmlElement {
  if (/<!DOCTYPE/i.test(text)) throw new XmlReadError('a DOCTYPE is not allowed in a SOAP message');
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  const tag = /<(\/?)([^\s/>]+)((?:\s+[^\s=]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<!\[CDATA\[([\s\S]*?)\]\]>/g;
  let at = 0;
  for (let m = tag.exec(text); m; m = tag.exec(text)) {
    const top = stack[stack.length - 1]!;
    top.text += decodeXmlText(text.slice(at, m.index));
    at = tag.lastIndex;
    if (m[5] !== undefined) {
      top.text += m[5];
      continue;
    }
    if (m[2] === undefined) continue; // declaration or comment
    const name = localName(m[2]);
    if (m[1] === '/') {
      if (stack.length < 2 || top.name !== name) throw new XmlReadError(`unexpected </${m[2]}>`);
      stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of (m[3] ?? '').matchAll(/([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs[localName(a[1]!)] = decodeXmlText(a[2] ?? a[3] ?? '');
    const el: XmlElement = { name, attrs, children: [], text: '' };
    top.children.push(el);
    if (m[4] !== '/') stack.push(el);
  }
  if (stack.length !== 1) throw new XmlReadError(`<${stack[stack.length - 1]!.name}> is not closed`);
  const first = root.children[0];
  if (!first) throw new XmlReadError('no root element');
  return first;
}

/** The first descendant along `path` (local names), or undefined. */
export function findPath(el: XmlElement | undefined, ...path: string[]): XmlElement | undefined {
  let cur = el;
  for (const name of path) {
    cur = cur?.children.find((c) => c.name === name);
    if (!cur) return undefined;
  }
  return cur;
}
