// The page's types. A value no source could fill is null (or absent for an
// omitempty field), never 0.
import type { ECC, Slot } from "./types.gen";

export type Num = number | null;

export type Range = "5m" | "15m" | "60m" | "6h" | "24h" | "7d";
/** The ranges the hub's history serves (internal/history: 6h, 24h and 7d from its minute rollups). */
export const RANGES: readonly Range[] = ["5m", "15m", "60m", "6h", "24h", "7d"] as const;
/** Resolution in seconds of each range's slots (DESIGN.md; internal/history's tiers). */
export const RANGE_RESOLUTION_S: Record<Range, number> = { "5m": 5, "15m": 15, "60m": 60, "6h": 360, "24h": 1440, "7d": 10080 };
export const POINTS_PER_RANGE = 60;

// The hub's JSON: generated from the Go types (types.gen.ts, `make generate`),
// re-exported here so components import from one place.
export type {
  AIModels,
  Alert,
  AlertsBody,
  Container,
  ContainerCounts,
  Databases,
  EnergyEstimate,
  FleetFigures,
  FleetRow,
  FleetTotals,
  FleetUpdate,
  GPUView,
  HealthPoint,
  History,
  HostStatus,
  HostView,
  Kind,
  Latencies,
  LevelView,
  LoadedModel,
  MIGView,
  ModelEntry,
  ModelView,
  NVLinkView,
  PCIeView,
  Point,
  PostgreSQL,
  ProcessView,
  Redis,
  RulesBody,
  RuleView,
  Stats,
  Throughput,
  Update,
  XIDView,
} from "./types.gen";
export { Section } from "./types.gen";

export type ECCView = ECC;
export type SlotView = Slot;

/** Values of ModelView.status and ModelEntry.status the page knows. */
export type ModelStatus =
  | "healthy"
  | "degraded"
  | "loading"
  | "unhealthy"
  | "unreachable"
  | "unconfigured"
  | (string & {});

/** Values of ModelEntry.kind the page knows. */
export type ModelKind = "rtdetr" | "llamacpp" | "vllm" | "sglang" | "tgi" | "triton" | "ollama" | (string & {});

export type Severity = "warning" | "critical";

export type Connection = "connected" | "reconnecting" | "offline";
