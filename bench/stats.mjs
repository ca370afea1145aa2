// Small numeric helpers shared by the bench modules.

/** The median of the finite numbers in `values`, or null when there are none. */
export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** `v` with `digits` decimals (thousands grouped when large), "–" when not a number. */
export function fmt(v, digits) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1000 && digits <= 1) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
}
