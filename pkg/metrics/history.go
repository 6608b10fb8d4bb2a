package metrics

import "time"

// History is a window of points, oldest first: the body of
// GET /api/v1/history and of the WebSocket's performance_history message.
type History struct {
	Type        string  `json:"type,omitempty"`
	Range       string  `json:"range"`
	ResolutionS int     `json:"resolution_s"`
	Points      []Point `json:"points"`
}

// Point is one slot of a window. It has the Update's numeric fields, read
// the same way a chart reads a live update, holding the means over the
// slot. Max holds the slot's maxima by JSON path ("host.cpu_percent",
// "gpu.utilization", "gpus.<host>.<index>.utilization"), so a spike is not
// averaged away. A slot no sample fell into has only its timestamp.
type Point struct {
	Timestamp time.Time    `json:"timestamp"`
	GPU       *GPUView     `json:"gpu,omitempty"`
	GPUs      []GPUView    `json:"gpus,omitempty"`
	Host      *HostView    `json:"host,omitempty"`
	Hosts     []HostStatus `json:"hosts,omitempty"`
	AIModels  *AIModels    `json:"ai_models,omitempty"`
	Inference *Latencies   `json:"inference,omitempty"`
	Databases *Databases   `json:"databases,omitempty"`
	// Containers counts the containers by health over the slot (means).
	Containers *ContainerCounts `json:"containers,omitempty"`
	// Fleet is the site's totals over the slot (means), in the fleet
	// view's history only.
	Fleet *FleetFigures      `json:"fleet,omitempty"`
	Max   map[string]float64 `json:"max,omitempty"`
}

// FleetFigures are the fleet view's totals as a history point keeps them:
// each the mean over the slot, its maximum in Point.Max under "fleet.<key>"
// ("fleet.util_max"). The keys are FleetTotals'; UtilMax is the busiest
// GPU's utilization. GPU figures no GPU reported are absent.
type FleetFigures struct {
	Hosts      *float64 `json:"hosts,omitempty"`
	Online     *float64 `json:"online,omitempty"`
	GPUs       *float64 `json:"gpus,omitempty"`
	UtilMean   *float64 `json:"util_mean,omitempty"`
	UtilMax    *float64 `json:"util_max,omitempty"`
	VRAMUsed   *float64 `json:"vram_used_gb,omitempty"`
	VRAMTotal  *float64 `json:"vram_total_gb,omitempty"`
	Power      *float64 `json:"power_watts,omitempty"`
	PowerLimit *float64 `json:"power_limit_watts,omitempty"`
	Critical   *float64 `json:"alerts_critical,omitempty"`
	Warning    *float64 `json:"alerts_warning,omitempty"`
}

// ContainerCounts is the container list of an update reduced to what a
// chart plots.
type ContainerCounts struct {
	Total     *float64 `json:"total,omitempty"`
	Unhealthy *float64 `json:"unhealthy,omitempty"`
}
