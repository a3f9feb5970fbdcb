/** Images for tests: ones whose headers lie about their size. */

/** A PNG whose header claims width x height (no real pixel data): enough for the size check. */
export function pngHeader(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.alloc(0)), chunk('IEND', Buffer.alloc(0))]);
}

/**
 * Images for fuzzing: ordinary ones and extreme ones (1x1, slivers, headers claiming billions
 * of pixels, truncated files, a huge SVG, GIF, WebP, TIFF, JPEG).
 */
export async function fuzzImages(): Promise<Buffer[]> {
  const { default: sharp } = await import('sharp');
  const noise = Buffer.from(Array.from({ length: 40 * 30 * 3 }, (_, i) => (i * 37) % 256));
  const base = sharp(noise, { raw: { width: 40, height: 30, channels: 3 } });
  const png = await base.clone().png().toBuffer();
  const solid = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: '#4080c0' } });
  return [
    png,
    await base.clone().jpeg().toBuffer(),
    await base.clone().webp().toBuffer(),
    await base.clone().gif().toBuffer(),
    await base.clone().tiff().toBuffer(),
    await solid(1, 1).png().toBuffer(),
    await solid(1, 3000).png().toBuffer(),
    await solid(3000, 1).png().toBuffer(),
    await solid(2, 2).png({ palette: true }).toBuffer(),
    pngHeader(60_000, 60_000),
    pngHeader(2 ** 31 - 1, 2 ** 31 - 1),
    pngHeader(0, 10),
    png.subarray(0, Math.floor(png.length / 2)),
    Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><rect width="10" height="10"/></svg>'),
    Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><image href="file:///etc/passwd"/></svg>'),
    Buffer.from('hello, not an image'),
  ];
}
