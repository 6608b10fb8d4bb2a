// Series colours that stay with their series. A GPU or host keeps the same
// colour in every chart of the page: the colour comes from the series' key
// (host name, "host#index") and the set of keys on the page — the key's
// rank in their natural order — never from its position in one chart's
// list, so a host listed second in one chart and first in another is still
// drawn the same. Up to 16 keys never share a colour, and the first few
// (two hosts, a host's GPUs) get the most different ones.

/**
 * Sixteen colours told apart at a glance on white and on the dark
 * background, ordered so that each next one differs most from those before
 * it: hues spread round the wheel, with a lightness step between colours of
 * similar hue. Tremor draws them as stroke-<name> classes,
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

const natural = new Intl.Collator("en", { numeric: true });

/**
 * A colour for each key, by its rank among the keys in natural order
 * ("#2" before "#10"): the same set of keys gets the same colours whichever
 * order a chart lists them in. Past 16 keys colours repeat.
 */
export function colorsFor(keys: readonly string[], palette: readonly string[] = SERIES_COLORS): Map<string, string> {
  const out = new Map<string, string>();
  [...new Set(keys)].sort(natural.compare).forEach((k, i) => out.set(k, palette[i % palette.length]!));
  return out;
}

/** The colours of one chart's categories, in its order, from the page-wide map. */
export function pick(colors: Map<string, string>, keys: readonly string[]): string[] {
  return keys.map((k) => colors.get(k) ?? "gray-500");
}
