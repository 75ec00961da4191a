import { JsonLimitError, JsonShapeGuard, parseBoundedJson } from '../../src/server/body/json';

const limits = { maxDepth: 4, maxArrayLength: 5, maxStringLength: 10, maxObjectKeys: 3 };
const refusal = (body: string | Buffer, l = limits) => {
  try {
    parseBoundedJson(body, l);
    return 'parsed';
  } catch (e) {
    return e instanceof JsonLimitError ? `${e.statusCode} ${e.limit}` : `${(e as { statusCode?: number }).statusCode} ${(e as Error).message}`;
  }
};

describe('parseBoundedJson', () => {
  it('parses what is within every limit, as JSON.parse would', () => {
    const v = { a: [1, 2, [3, { b: 'x"y\\\\z' }]], c: 'ünïcödé' };
    expect(parseBoundedJson(JSON.stringify(v), { ...limits, maxStringLength: 20 })).toEqual(v);
    expect(parseBoundedJson(Buffer.from('[1,2,3,4,5]'), limits)).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses each limit by name with a 400', () => {
    expect(refusal('[[[[1]]]]')).toBe('parsed');
    expect(refusal('[[[[[1]]]]]')).toBe('400 maxDepth');
    expect(refusal('[1,2,3,4,5,6]')).toBe('400 maxArrayLength');
    expect(refusal('{"a":1,"b":2,"c":3,"d":4}')).toBe('400 maxObjectKeys');
    expect(refusal('["0123456789"]')).toBe('parsed');
    expect(refusal('["0123456789a"]')).toBe('400 maxStringLength');
    // structural characters inside strings do not count; escaped quotes do not end them
    expect(refusal('["[[[[[,,,,,,", "a\\"[[[[["]', { ...limits, maxStringLength: 20 })).toBe('parsed');
    expect(new JsonLimitError('x', 'maxDepth').message).toBe('x');
  });

  it('refuses five million levels of nesting after reading the first few bytes', () => {
    const guard = new JsonShapeGuard({ maxDepth: 64, maxArrayLength: 10, maxStringLength: 10 });
    const body = Buffer.alloc(5_000_000, '[');
    let read = 0;
    const err = (() => {
      try {
        for (let i = 0; i < body.length; i += 65536) {
          const chunk = body.subarray(i, i + 65536);
          guard.feed(chunk);
          read += chunk.length;
        }
      } catch (e) {
        return e as JsonLimitError;
      }
    })();
    expect(err?.limit).toBe('maxDepth');
    expect(err?.message).toBe('JSON nested deeper than 64 levels (the limit for this route)');
    expect(read).toBe(0); // refused inside the first chunk
  });

  it('keeps its place across chunk boundaries, inside strings and escapes', () => {
    const text = JSON.stringify({ images: ['ab\\"c', 'x'.repeat(30)], n: [1, 2, 3] });
    for (let cut = 1; cut < text.length; cut++) {
      const g = new JsonShapeGuard({ maxDepth: 2, maxArrayLength: 3, maxStringLength: 30 });
      g.feed(Buffer.from(text.slice(0, cut)));
      g.feed(Buffer.from(text.slice(cut)));
    }
    const g = new JsonShapeGuard({ maxDepth: 2, maxArrayLength: 3, maxStringLength: 29 });
    expect(() => {
      g.feed(Buffer.from(text.slice(0, 20)));
      g.feed(Buffer.from(text.slice(20)));
    }).toThrow(/longer than 29 bytes/);
  });

  it('refuses invalid JSON, an empty body and prototype keys with a 400', () => {
    expect(refusal('{"images": [')).toMatch(/^400 invalid JSON/);
    expect(refusal('  ')).toBe('400 empty JSON body');
    expect(refusal('{"a":{"__proto__":{"x":1}}}')).toBe("400 JSON key '__proto__' is not allowed");
    const long = { ...limits, maxStringLength: 20 };
    expect(refusal('{"constructor":{"prototype":1}}', long)).toBe("400 JSON key 'constructor' is not allowed");
    expect(refusal('{"a":"constructor"}', long)).toBe('parsed');
  });
});
