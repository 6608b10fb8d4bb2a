// Series colours that stay with their series. A GPU or host keeps the same
// colour in every chart of the page: the colour is derived from the series'
// key (host name, "host#index"), never from its position in one chart's list,
// so a host that is second in the CPU chart and first in another is still
// drawn the same. Keys that would land on a taken colour take the next free
// one, in key order, so up to 16 series on the page never share a colour.

/**
 * Sixteen colours told apart at a glance on white and on the dark
 * background: hues spread round the wheel, with a lightness step between
 * neighbours of similar hue. Tremor draws them as stroke-<name> classes,
 * all safelisted in tailwind.config.js.
 */
export const SERIES_COLORS = [
  "blue-600",
  "orange-500",
  "emerald-500",
  "fuchsia-600",
  "yellow-400",
  "cyan-400",
  "rose-700",
  "violet-400",
  "lime-600",
  "pink-300",
  "teal-800",
  "amber-800",
  "sky-300",
  "indigo-800",
  "gray-400",
  "green-300",
] as const;

/** FNV-1a, enough to spread short keys over 16 slots. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A colour for each key: the key's own slot when free, else the next free
 * one. Keys are placed in sorted order, so the same set of keys gets the
 * same colours whichever order a chart lists them in. Past 16 keys colours
 * repeat.
 */
export function colorsFor(keys: readonly string[], palette: readonly string[] = SERIES_COLORS): Map<string, string> {
  const out = new Map<string, string>();
  const taken = new Set<number>();
  const n = palette.length;
  for (const k of [...new Set(keys)].sort()) {
    let slot = hash(k) % n;
    if (taken.size < n) while (taken.has(slot)) slot = (slot + 1) % n;
    taken.add(slot);
    out.set(k, palette[slot]!);
  }
  return out;
}

/** The colours of one chart's categories, in its order, from the page-wide map. */
export function pick(colors: Map<string, string>, keys: readonly string[]): string[] {
  return keys.map((k) => colors.get(k) ?? "gray-500");
}
