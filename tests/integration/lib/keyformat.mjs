// Key format: dvs_live_ + 32 base62 + 6 base62 checksum (CRC-32 of the random
// part). An implementation independent of the server's, shared by the
// harness and the secrets sweep (which must not load the harness: importing
// it starts the sweep recorder).

export const KEY_PREFIX = 'dvs_live_';
export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const KEY_RE = /^dvs_live_[0-9A-Za-z]{38}$/;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3 / zlib) of the bytes of an ASCII string. */
export function crc32(str) {
  let c = 0xffffffff;
  for (const b of Buffer.from(str, 'latin1')) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Base62, most significant digit first, left-padded with '0' to `width`. */
export function base62(n, width = 6) {
  let s = '';
  let v = n;
  do {
    s = BASE62[v % 62] + s;
    v = Math.floor(v / 62);
  } while (v > 0);
  return s.padStart(width, '0');
}

/** The 6-character checksum of a key's 32 random characters. */
export function checksumOf(random32) {
  return base62(crc32(random32), 6);
}
