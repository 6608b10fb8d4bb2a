package metrics

// ModelEntry is one configured model server of one host in the update's
// "models" list (an extension): every model an agent reads, the seed's
// rtdetr and nemotron included, with the figures its kind has. A figure
// the server does not export is null, and Notes say which kinds never
// have it.
type ModelEntry struct {
	Host   string `json:"host"`
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	Model  string `json:"model"`

	VRAMGB    *float64 `json:"vram_gb"`
	GPUs      []int    `json:"gpus,omitempty"`
	SMPercent *float64 `json:"sm_percent"`

	// Latency is end to end, TTFT the time to first token, ITL the time
	// between tokens, Queue the wait before a request starts; each over
	// the update's latency window, in milliseconds. Servers that count
	// time instead of keeping a histogram (Triton) give an average only.
	Latency Stats `json:"latency_ms"`
	TTFT    Stats `json:"ttft_ms"`
	ITL     Stats `json:"itl_ms"`
	Queue   Stats `json:"queue_ms"`

	// Rates over the window, per second.
	PromptTokensPerS *float64 `json:"prompt_tokens_per_s"`
	GenTokensPerS    *float64 `json:"generation_tokens_per_s"`
	RequestsPerS     *float64 `json:"requests_per_s"`

	Waiting        *float64 `json:"requests_waiting"`
	Running        *float64 `json:"requests_running"`
	KVCachePercent *float64 `json:"kv_cache_percent"`

	SlotsActive *int          `json:"slots_active,omitempty"`
	SlotsTotal  *int          `json:"slots_total,omitempty"`
	ContextSize *int          `json:"context_size,omitempty"`
	Slots       []Slot        `json:"slots,omitempty"`
	Loaded      []LoadedModel `json:"loaded,omitempty"`

	Energy *EnergyEstimate `json:"energy,omitempty"`
	Notes  []string        `json:"notes,omitempty"`
	Stale  bool            `json:"stale,omitempty"`
}

// LoadedModel is a model an Ollama server holds, in the dashboard's units.
type LoadedModel struct {
	Name             string   `json:"name"`
	SizeGB           float64  `json:"size_gb"`
	VRAMGB           float64  `json:"vram_gb"`
	VRAMSharePercent *float64 `json:"vram_share_percent"`
	ContextLength    *int     `json:"context_length"`
	ExpiresAt        string   `json:"expires_at,omitempty"`
	ParameterSize    string   `json:"parameter_size,omitempty"`
	Quantization     string   `json:"quantization_level,omitempty"`
}

// EnergyEstimate is a model's share of its GPUs' energy, an estimate
// (README, "Energy per model"): over the agent's last interval, and over
// the update's latency window with the energy per generated token, per
// image (the detector) or per inference (Triton) where the server counts
// them.
type EnergyEstimate struct {
	Estimate           bool     `json:"estimate"`
	Method             string   `json:"method"`
	IntervalJoules     *float64 `json:"interval_joules"`
	IntervalWatts      *float64 `json:"interval_watts"`
	Window             string   `json:"window,omitempty"`
	WindowJoules       *float64 `json:"window_joules"`
	WindowWatts        *float64 `json:"window_watts"`
	JoulesPerToken     *float64 `json:"joules_per_token"`
	JoulesPerImage     *float64 `json:"joules_per_image,omitempty"`
	JoulesPerInference *float64 `json:"joules_per_inference,omitempty"`
}

// EnergyMethod is EnergyEstimate.Method: how the figure is made.
const EnergyMethod = "GPU energy counter (or power × time) split by process SM share"
