/**
 * Cached typed views over the ArrayBuffer behind a Uint8Array, so that the per-page functions
 * (checksum, header reads) read little-endian integers without allocating a view per page.
 *
 * A backup reads pages into a few reused buffers, so the last buffer seen almost always matches:
 * that check is one comparison. Other buffers fall back to a WeakMap, which does not keep them
 * alive. The single "last" slot does keep one ArrayBuffer alive until another one is used; that
 * is one read buffer, accepted for the speed of the common case.
 */

/** True when the host stores integers little-endian, as PostgreSQL on x86-64 and arm64 does. */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

let lastDataViewBuffer: ArrayBufferLike | undefined;
let lastDataView: DataView = new DataView(new ArrayBuffer(0));
const dataViews = new WeakMap<ArrayBufferLike, DataView>();

let lastWordsBuffer: ArrayBufferLike | undefined;
let lastWords: Uint32Array = new Uint32Array(0);
const wordViews = new WeakMap<ArrayBufferLike, Uint32Array>();

/**
 * A DataView over the whole ArrayBuffer behind `buf`: index it with `buf.byteOffset + offset`.
 */
export function dataViewOf(buf: Uint8Array): DataView {
  const ab = buf.buffer;
  if (ab === lastDataViewBuffer) return lastDataView;
  let view = dataViews.get(ab);
  if (view === undefined) {
    view = new DataView(ab);
    dataViews.set(ab, view);
  }
  lastDataViewBuffer = ab;
  lastDataView = view;
  return view;
}

/**
 * Host-endian 32-bit words over the whole ArrayBuffer behind `buf` (a trailing partial word is
 * left out): word `(buf.byteOffset + offset) / 4` for a 4-aligned byte position.
 */
export function wordsOf(buf: Uint8Array): Uint32Array {
  const ab = buf.buffer;
  if (ab === lastWordsBuffer) return lastWords;
  let view = wordViews.get(ab);
  if (view === undefined) {
    view = new Uint32Array(ab, 0, Math.floor(ab.byteLength / 4));
    wordViews.set(ab, view);
  }
  lastWordsBuffer = ab;
  lastWords = view;
  return view;
}
