/**
 * A DOCX is a zip. Before mammoth inflates any of it, the sizes its entries declare in the zip's
 * central directory are added up: a zip bomb (kilobytes that inflate to gigabytes) is refused
 * without inflating a byte. This reads only the directory's fixed-size records (APPNOTE.TXT 4.3.12
 * and 4.3.16), never the contents; a zip whose entries lie about their sizes still meets the
 * extraction worker's memory and time bounds (extract.ts).
 */

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_ENTRY_SIGNATURE = 0x02014b50;
const EOCD_MIN = 22;
/** The end record sits within the last 22 bytes plus a comment of at most 65,535. */
const EOCD_SEARCH = EOCD_MIN + 0xffff;

export interface ZipSizes {
  entries: number;
  uncompressedBytes: number;
}

/**
 * The entry count and total declared uncompressed size, or a reason the directory cannot be read
 * (a truncated or ZIP64 archive: a DOCX within our byte bounds never needs ZIP64).
 */
export function zipDeclaredSizes(bytes: Uint8Array): ZipSizes | { error: string } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let at = bytes.length - EOCD_MIN; at >= Math.max(0, bytes.length - EOCD_SEARCH); at--) {
    if (view.getUint32(at, true) === EOCD_SIGNATURE) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) return { error: "no zip directory found" };
  const count = view.getUint16(eocd + 10, true);
  const directorySize = view.getUint32(eocd + 12, true);
  const directoryOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) return { error: "ZIP64 archives are not supported" };
  if (directoryOffset + directorySize > eocd) return { error: "the zip directory lies outside the file" };
  let at = directoryOffset;
  let total = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > eocd || view.getUint32(at, true) !== CENTRAL_ENTRY_SIGNATURE) return { error: "the zip directory is damaged" };
    const uncompressed = view.getUint32(at + 24, true);
    if (uncompressed === 0xffffffff) return { error: "ZIP64 entries are not supported" };
    total += uncompressed;
    at += 46 + view.getUint16(at + 28, true) + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return { entries: count, uncompressedBytes: total };
}
