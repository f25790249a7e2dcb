// Cutting a length into near-equal pieces: weights too large for one device buffer, and the
// chunks of a training graph's largest activations (model/chunk-plan.ts).

/** `total` split into `n` near-equal pieces, each a multiple of `align` except the last. */
export function pieces(total: number, n: number, align: number): number[] {
  const size = Math.ceil(total / n / align) * align;
  const out: number[] = [];
  for (let at = 0; at < total; at += size) out.push(Math.min(size, total - at));
  return out;
}

/** Sizes of pieces of `total` rows, `rowBytes` each, every piece at most `limit` bytes (near-equal). */
export function piecesUnder(total: number, rowBytes: number, limit: number): number[] {
  const perPiece = Math.floor(limit / rowBytes);
  if (perPiece < 1) throw new Error(`one row of ${rowBytes} bytes exceeds the device's buffer limit of ${limit} bytes`);
  return pieces(total, Math.ceil(total / perPiece), 1);
}
