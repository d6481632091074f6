// A strict JSON scanner over a reply's UTF-8 bytes that builds no objects: the fast path of reading a scoring
// reply (vllm-scan.ts), where JSON.parse would build a few objects and strings per candidate token. It accepts
// exactly the JSON grammar of RFC 8259 and reads numbers to the same double as JSON.parse; anything it does not
// handle (an escaped key, a duplicate field) makes it give up, and the caller reads the reply the slow way.

/** Thrown when the scanner gives up: one shared instance, as giving up must cost no stack capture. */
export const GIVE_UP: Error = Object.freeze(new Error('the reply is not in the form the fast reader takes'));

const QUOTE = 34;
const BACKSLASH = 92;
const MINUS = 45;
const PLUS = 43;
const DOT = 46;
const ZERO = 48;
const NINE = 57;

/** 10^0 … 10^22: every one exact in a double, so m · 10^e and m / 10^e round once (Clinger's fast path). */
const POW10 = Float64Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));
/** Mantissas below 2^53 are exact in a double (a computed one at or above it may have been rounded). */
const EXACT = 2 ** 53;

const isDigit = (c: number) => c >= ZERO && c <= NINE;

export class JsonScanner {
  i = 0;
  private readonly text: Buffer;

  constructor(readonly b: Uint8Array) {
    this.text = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }

  /** The byte at i after white space, without moving past it; −1 at the end. */
  peek(): number {
    const b = this.b;
    let i = this.i;
    for (;;) {
      const c = b[i];
      if (c === undefined) {
        this.i = i;
        return -1;
      }
      if (c !== 32 && c !== 10 && c !== 13 && c !== 9) {
        this.i = i;
        return c;
      }
      i++;
    }
  }

  /** Consumes `c` (after white space) or gives up. */
  expect(c: number): void {
    if (this.peek() !== c) throw GIVE_UP;
    this.i++;
  }

  /** Consumes `c` when it comes next (after white space). */
  take(c: number): boolean {
    if (this.peek() !== c) return false;
    this.i++;
    return true;
  }

  /** After `{`: true at a member (then call key()), false at `}` (consumed). */
  firstMember(): boolean {
    return !this.take(0x7d);
  }

  /** After a member's value: true at `,` (consumed, a key follows), false at `}` (consumed). */
  nextMember(): boolean {
    return this.next(0x7d);
  }

  /** After `[`: true at an element, false at `]` (consumed). */
  firstElement(): boolean {
    return !this.take(0x5d);
  }

  /** After an element: true at `,` (consumed), false at `]` (consumed). */
  nextElement(): boolean {
    return this.next(0x5d);
  }

  /** `,` (consumed): true; the closing bracket `close` (consumed): false; anything else gives up. */
  private next(close: number): boolean {
    const c = this.peek();
    this.i++;
    if (c === 0x2c) return true;
    if (c === close) return false;
    throw GIVE_UP;
  }

  /**
   * A member's key and its `:`; returns the key's byte range [start, end) in b. Keys with escapes give up
   * (no server writes one for the fields read here).
   */
  key(): number {
    const start = this.plain();
    this.keyEnd = this.i - 1;
    this.expect(0x3a);
    return start;
  }
  /** End (exclusive) of the last key(). */
  keyEnd = 0;

  /**
   * The key `name` (ASCII, no escapes) and its `:` when they come next (consumed); false, consuming nothing,
   * otherwise: one pass over the bytes for the fields a reader expects, before the general key().
   */
  tryKey(name: Uint8Array): boolean {
    const b = this.b;
    let i = this.i;
    if (b[i] !== QUOTE) {
      if (this.peek() !== QUOTE) return false;
      i = this.i;
    }
    i++;
    for (let j = 0; j < name.length; j++, i++) if (b[i] !== name[j]) return false;
    if (b[i] !== QUOTE) return false;
    this.i = i + 1;
    if (b[this.i] === 0x3a) this.i++;
    else this.expect(0x3a);
    return true;
  }

  /** Whether the last key() is `name` (ASCII). */
  keyIs(start: number, name: Uint8Array): boolean {
    if (this.keyEnd - start !== name.length) return false;
    const b = this.b;
    for (let j = 0; j < name.length; j++) if (b[start + j] !== name[j]) return false;
    return true;
  }

  /** The last key() as a decimal number ("123" as Python writes an int key, no leading zero), or NaN. */
  keyDecimal(start: number): number {
    const len = this.keyEnd - start;
    const b = this.b;
    // Only the form Python writes ("0", "123"): "0123" names the same id to a reader of numbers, not of keys.
    if (len === 0 || len > 10 || (len > 1 && b[start] === ZERO)) return Number.NaN;
    let n = 0;
    for (let j = start; j < this.keyEnd; j++) {
      const d = (b[j] ?? 0) - ZERO;
      if (d < 0 || d > 9) return Number.NaN;
      n = n * 10 + d;
    }
    return n;
  }

  /** A string value without escapes, as text; gives up on escapes. */
  plainString(): string {
    const start = this.plain();
    return this.text.toString('utf8', start, this.i - 1);
  }

  /** A string without escapes (consumed, closing quote included); returns where its text starts. */
  private plain(): number {
    this.expect(QUOTE);
    const b = this.b;
    const start = this.i;
    let i = start;
    for (;;) {
      const c = b[i];
      if (c === undefined || c === BACKSLASH || c < 0x20) throw GIVE_UP;
      if (c === QUOTE) break;
      i++;
    }
    this.i = i + 1;
    return start;
  }

  /** `null` when it comes next (consumed). */
  takeNull(): boolean {
    if (this.peek() !== 0x6e) return false;
    this.literal('null');
    return true;
  }

  /**
   * A JSON number, to the double JSON.parse gives: integer mantissa and power of ten when both are exact
   * (one correctly rounded operation), otherwise Number() of its text, which rounds as JSON.parse does.
   */
  number(): number {
    const b = this.b;
    let i = this.i;
    let c = b[i];
    if (c === undefined || !(c === MINUS || isDigit(c))) {
      this.peek();
      i = this.i;
      c = b[i];
    }
    const start = i;
    let neg = false;
    if (c === MINUS) {
      neg = true;
      c = b[++i];
    }
    let mant = 0;
    let exact = true;
    let scale = 0;
    if (c === ZERO) {
      c = b[++i];
    } else if (c !== undefined && isDigit(c)) {
      do {
        mant = mant * 10 + (c - ZERO);
        c = b[++i];
      } while (c !== undefined && isDigit(c));
      if (mant >= EXACT) exact = false;
    } else throw GIVE_UP;
    if (c === DOT) {
      c = b[++i];
      if (c === undefined || !isDigit(c)) throw GIVE_UP;
      do {
        mant = mant * 10 + (c - ZERO);
        scale--;
        c = b[++i];
      } while (c !== undefined && isDigit(c));
      if (mant >= EXACT) exact = false;
    }
    if (c === 0x65 || c === 0x45) {
      c = b[++i];
      let eneg = false;
      if (c === MINUS || c === PLUS) {
        eneg = c === MINUS;
        c = b[++i];
      }
      if (c === undefined || !isDigit(c)) throw GIVE_UP;
      let e = 0;
      do {
        if (e < 1e6) e = e * 10 + (c - ZERO);
        c = b[++i];
      } while (c !== undefined && isDigit(c));
      scale += eneg ? -e : e;
    }
    this.i = i;
    if (exact && scale >= -22 && scale <= 22) {
      const p = POW10[scale < 0 ? -scale : scale] ?? 1;
      const v = scale < 0 ? mant / p : mant * p;
      return neg ? -v : v;
    }
    return Number(this.text.toString('latin1', start, i));
  }

  /** Skips one value of any kind, checking its grammar as JSON.parse would. */
  skipValue(): void {
    const c = this.peek();
    if (c === QUOTE) this.skipString();
    else if (c === 0x7b) {
      this.i++;
      if (this.firstMember())
        do {
          this.skipString();
          this.expect(0x3a);
          this.skipValue();
        } while (this.nextMember());
    } else if (c === 0x5b) {
      this.i++;
      if (this.firstElement())
        do this.skipValue();
        while (this.nextElement());
    } else if (c === 0x74) this.literal('true');
    else if (c === 0x66) this.literal('false');
    else if (c === 0x6e) this.literal('null');
    else this.number();
  }

  /** Skips a string, escapes included (checked as JSON allows them). */
  skipString(): void {
    this.expect(QUOTE);
    const b = this.b;
    let i = this.i;
    for (;;) {
      const c = b[i++];
      if (c === undefined || c < 0x20) throw GIVE_UP;
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        const e = b[i++];
        if (e === 0x75) {
          for (let j = 0; j < 4; j++) {
            const h = b[i++] ?? 0;
            if (!(isDigit(h) || (h >= 0x41 && h <= 0x46) || (h >= 0x61 && h <= 0x66))) throw GIVE_UP;
          }
        } else if (
          e !== QUOTE &&
          e !== BACKSLASH &&
          e !== 0x2f &&
          e !== 0x62 &&
          e !== 0x66 &&
          e !== 0x6e &&
          e !== 0x72 &&
          e !== 0x74
        )
          throw GIVE_UP;
      }
    }
    this.i = i;
  }

  private literal(word: string): void {
    this.peek();
    const b = this.b;
    for (let j = 0; j < word.length; j++) if (b[this.i + j] !== word.charCodeAt(j)) throw GIVE_UP;
    this.i += word.length;
  }

  /** Only white space is left. */
  end(): void {
    if (this.peek() !== -1) throw GIVE_UP;
  }
}

/** An ASCII field name as bytes, for keyIs. */
export const field = (name: string): Uint8Array => Uint8Array.from(name, (ch) => ch.charCodeAt(0));
