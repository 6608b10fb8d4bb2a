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
	Containers *ContainerCounts   `json:"containers,omitempty"`
	Max        map[string]float64 `json:"max,omitempty"`
}

// ContainerCounts is the container list of an update reduced to what a
// chart plots.
type ContainerCounts struct {
	Total     *float64 `json:"total,omitempty"`
	Unhealthy *float64 `json:"unhealthy,omitempty"`
}
