// Formatting shared by the panels. Absent values render as an em dash, never
// as 0, so a missing source is never mistaken for an idle one.

export const DASH = "—";

// Intl formatters are costly to build (toLocaleString with options builds
// one per call: it was most of a chart redraw), so each is built once.
const numberFormats: Intl.NumberFormat[] = [0, 1, 2, 3].map((d) => new Intl.NumberFormat("en-US", { maximumFractionDigits: d }));
const timeHMS = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/** A number with at most `digits` (0–3) fraction digits, grouped: 1,234.5. */
export function num(v: number, digits = 0): string {
  return (numberFormats[Math.max(0, Math.min(3, digits))] as Intl.NumberFormat).format(v);
}

export function isNum(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

export function fmt(v: number | null | undefined, digits = 0, unit = ""): string {
  if (!isNum(v)) return DASH;
  const s = num(v, digits);
  return unit ? `${s}${unit.startsWith("%") || unit.startsWith("°") ? "" : " "}${unit}` : s;
}

/** Milliseconds as "45 ms" below a second, "2.1 s" above. */
export function fmtMs(v: number | null | undefined): string {
  if (!isNum(v)) return DASH;
  if (Math.abs(v) >= 1000) return `${num(v / 1000, 1)} s`;
  return `${num(v, v < 10 ? 1 : 0)} ms`;
}

export function fmtGB(v: number | null | undefined): string {
  if (!isNum(v)) return DASH;
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/** "12 s ago", "2 min ago", "3 h ago". */
export function ago(ts: string | number | Date | undefined | null, now: number = Date.now()): string {
  if (ts == null) return "never";
  const t = typeof ts === "number" ? ts : new Date(ts).getTime();
  if (!Number.isFinite(t) || t <= 0) return "never";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 1) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

export function clock(ts: string | number | Date): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return DASH;
  return timeHMS.format(d);
}

/** Axis label: seconds matter in 5m and 15m, not in 60m; the day in 7d ("3/12 14:00"). */
export function axisTime(ts: string, withSeconds: boolean, withDay = false): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return "";
  // By hand, not Intl: every chart labels all 60 points on each update, and
  // Intl's format was the costliest call left in a redraw. Same text as the
  // en-GB 24-hour clock used elsewhere on the page.
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  if (withDay) return `${d.getDate()}/${d.getMonth() + 1} ${hm}`;
  return withSeconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

const NVML_CODES: Record<string, string> = {
  ERROR_LIBRARY_NOT_FOUND: "library not found",
  ERROR_DRIVER_NOT_LOADED: "driver not loaded",
  ERROR_NO_PERMISSION: "no permission to open the device",
  ERROR_UNINITIALIZED: "not initialised",
  ERROR_GPU_IS_LOST: "GPU is lost",
  ERROR_INSUFFICIENT_POWER: "insufficient power",
  ERROR_NOT_SUPPORTED: "not supported on this device",
  ERROR_TIMEOUT: "timed out",
  ERROR_UNKNOWN: "unknown error",
};

/**
 * Readable text for the GPU section's error, e.g.
 * "NVML unavailable: ERROR_LIBRARY_NOT_FOUND" → "NVML: library not found".
 * Unrecognised errors are shown as they came, prefixed by nothing.
 */
export function readableGpuError(err: string): string {
  const m = /(?:^|\b)(?:nvml[^:]*:\s*)?(ERROR_[A-Z_]+)/i.exec(err);
  if (m && m[1]) {
    const code = m[1].toUpperCase();
    const text = NVML_CODES[code] ?? code.replace(/^ERROR_/, "").replace(/_/g, " ").toLowerCase();
    return `NVML: ${text}`;
  }
  return err;
}

/** True when the GPU error means "this machine has no NVIDIA GPU/driver". */
export function meansNoGpu(err: string): boolean {
  return /LIBRARY_NOT_FOUND|DRIVER_NOT_LOADED|no (nvidia )?(gpu|device)s? found|device count[^0-9]*0/i.test(err);
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function titleCase(s: string): string {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}
