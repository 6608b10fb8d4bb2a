package metrics

import "time"

// TypeFleet is the fleet view's message type on the WebSocket.
const TypeFleet = "fleet_update"

// Subjects the hub publishes views on, besides SubjectUpdate: each host's
// view on UpdateSubject(host), the fleet view on SubjectFleet.
const (
	SubjectFleet = "sysperf.v1.fleet"
	// SubjectHostUpdates matches every host's view.
	SubjectHostUpdates = updatePrefix + "*"

	updatePrefix = SubjectUpdate + "."
)

// UpdateSubject is where the hub publishes host's view.
func UpdateSubject(host string) string { return updatePrefix + HostToken(host) }

// FleetUpdate is the fleet view: one compact row per host, by name, and
// the site's totals. It is the body of GET /api/v1/hosts too (with its
// type).
type FleetUpdate struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Hosts     []FleetRow  `json:"hosts"`
	Totals    FleetTotals `json:"totals"`
}

// FleetRow is one host in the fleet view. The keys are short and the
// figures whole numbers (percent, GB, °C, W) so that a row of an 8-GPU
// host stays under 150 bytes before compression. A figure no GPU or host
// section reported is absent, never zero.
type FleetRow struct {
	Host string `json:"h"`
	// Offline is set when the host's newest sample is older than three
	// intervals; an online host leaves it out.
	Offline bool `json:"off,omitempty"`
	// Ago is how long before the message's timestamp the host's newest
	// sample was taken, seconds (its last seen).
	Ago  int64 `json:"ago"`
	GPUs int   `json:"g"`
	// UtilMean and UtilMax are GPU utilization over the host's GPUs, percent.
	UtilMean *float64 `json:"um,omitempty"`
	UtilMax  *float64 `json:"ux,omitempty"`
	// VRAMUsed and VRAMTotal are summed over the GPUs, GB.
	VRAMUsed  *float64 `json:"vu,omitempty"`
	VRAMTotal *float64 `json:"vt,omitempty"`
	// TempMax is the hottest GPU, °C.
	TempMax *float64 `json:"t,omitempty"`
	// Power and PowerLimit are summed over the GPUs, W.
	Power      *float64 `json:"p,omitempty"`
	PowerLimit *float64 `json:"pl,omitempty"`
	// Models is how many model servers the host reports; ModelsNotHealthy
	// maps each of them whose status is not "healthy" to its status.
	Models           int               `json:"mn,omitempty"`
	ModelsNotHealthy map[string]Status `json:"mx,omitempty"`
	// Critical and Warning count the host's firing alerts.
	Critical int `json:"ac,omitempty"`
	Warning  int `json:"aw,omitempty"`
	// CPU is percent; RAMUsed and RAMTotal are GB.
	CPU      *float64 `json:"c,omitempty"`
	RAMUsed  *float64 `json:"ru,omitempty"`
	RAMTotal *float64 `json:"rt,omitempty"`
}

// FleetTotals sums the rows; means are over the GPUs that report the figure.
type FleetTotals struct {
	Hosts    int      `json:"hosts"`
	Online   int      `json:"online"`
	GPUs     int      `json:"gpus"`
	UtilMean *float64 `json:"util_mean,omitempty"`
	// UtilMax is the busiest GPU's utilization, percent: what the fleet
	// history keeps as FleetFigures.UtilMax, so the live totals extend
	// the history's max series.
	UtilMax    *float64 `json:"util_max,omitempty"`
	VRAMUsed   *float64 `json:"vram_used_gb,omitempty"`
	VRAMTotal  *float64 `json:"vram_total_gb,omitempty"`
	Power      *float64 `json:"power_watts,omitempty"`
	PowerLimit *float64 `json:"power_limit_watts,omitempty"`
	// Critical and Warning count the firing alerts, site-wide ones included.
	Critical int `json:"alerts_critical"`
	Warning  int `json:"alerts_warning"`
}
