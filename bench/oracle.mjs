// The judge-call oracle of bench/waves-oracle.mjs and bench/waves.mjs: the fewest rows
// that fill one stratum's class quotas when every signal bin's true yield is known.
// See bench/waves-oracle.mjs for the optimisation it solves.

/** Rows the LP above needs in one stratum: bins [{ n: [n0, n1] }], quotas [q0, q1]. */
export function oracleRows(bins, q) {
  const bs = bins
    .map((b) => ({ N: b.n[0] + b.n[1], y0: b.n[0] / Math.max(1, b.n[0] + b.n[1]) }))
    .filter((b) => b.N > 0)
    .sort((a, b) => b.y0 - a.y0);
  const total = bs.reduce((a, b) => a + b.N, 0);
  // Class-c rows found in the first x rows from the top (class 0) or bottom (class 1) end.
  const fromTop = (x) => {
    let f0 = 0;
    for (const b of bs) {
      const t = Math.min(b.N, x);
      f0 += t * b.y0;
      x -= t;
      if (x <= 0) break;
    }
    return f0;
  };
  const fromBottom = (y) => {
    let f1 = 0;
    for (let i = bs.length - 1; i >= 0; i--) {
      const t = Math.min(bs[i].N, y);
      f1 += t * (1 - bs[i].y0);
      y -= t;
      if (y <= 0) break;
    }
    return f1;
  };
  const [q0, q1] = q;
  let best = Infinity;
  const step = Math.max(1, Math.floor(total / 4000));
  for (let x = 0; x <= total; x += step) {
    const f0 = fromTop(x);
    const f1 = x - f0;
    const ok = (y) => {
      const g1 = fromBottom(y);
      return f0 + (y - g1) >= q0 - 1e-9 && f1 + g1 >= q1 - 1e-9;
    };
    if (!ok(total - x)) continue;
    let lo = 0;
    let hi = total - x;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ok(mid)) hi = mid;
      else lo = mid + 1;
    }
    best = Math.min(best, x + lo);
  }
  return best;
}
