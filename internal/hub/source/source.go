// Package source is the contract between the hub and what it polls
// itself (internal/sources, or a plug of a test): a poll returns a
// Reading, and the hub alone writes its bookkeeping (update.sources,
// update.errors) from it. It is a leaf package so that internal/sources
// can return readings without importing the hub that builds them.
package source

import "github.com/sysperf/sysperf/pkg/metrics"

// Reading is one poll's answer.
type Reading struct {
	// Section is the key of the source's entries in update.sources,
	// update.errors and update.stale: the section it fills, or its own
	// name for a source that fills several (Prometheus) or an extra
	// database.
	Section string
	// Via is update.sources[Section]: where the data came from
	// ("postgres", "ping+engine"); empty leaves the entry as it is (a
	// fallback, which has no section of its own, or an extra database).
	Via string
	// Reason is update.errors[Section], why the poll failed or is
	// incomplete; empty when it worked.
	Reason string
	// Up is whether the poll reached what the source watches
	// (sysperf_source_up). A failed container ping is the containers'
	// health, not the source's, so Up and Reason are apart.
	Up bool
	// Fill writes the data into the update: only the source's own
	// section, or for a fallback only what is still empty. It returns
	// the other sections it filled, which are credited to Section in
	// update.sources: true when the section was empty and is now the
	// source's alone, false when it completed what another source began.
	// Nil when there is nothing to write.
	Fill func(u *metrics.Update) (filled map[string]bool)
}

// Apply writes the reading into u: its data, then its entries in
// sources and errors. The hub calls it; sources never write those maps.
func (r Reading) Apply(u *metrics.Update) {
	if u.Sources == nil {
		u.Sources = map[string]string{}
	}
	if u.Errors == nil {
		u.Errors = map[string]string{}
	}
	if r.Fill != nil {
		for section, alone := range r.Fill(u) {
			prev := u.Sources[section]
			if alone || prev == "" {
				u.Sources[section] = r.Section
				delete(u.Errors, section)
				continue
			}
			u.Sources[section] = prev + "+" + r.Section
		}
	}
	if r.Via != "" && r.Section != "" {
		u.Sources[r.Section] = r.Via
	}
	if r.Reason != "" {
		u.Errors[r.Section] = r.Reason
	} else {
		delete(u.Errors, r.Section)
	}
}
