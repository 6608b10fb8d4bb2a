package hub

import (
	"encoding/json"
	"log/slog"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// viewSource is the server's side of the views: each encoded once a tick,
// shared by the browsers and NATS.
type viewSource interface {
	// PublishUpdate takes the update and its JSON, nil to encode it when
	// first asked for.
	PublishUpdate(u *metrics.Update, full []byte)
	// View is the fleet view for host "", else that host's view.
	View(host string) ([]byte, bool)
}

// natsPublisher is what publishing needs of a NATS connection.
type natsPublisher interface {
	Publish(subject string, data []byte) error
	MaxPayload() int64
}

// publisher hands each update to the server and to NATS: the whole update
// on sysperf.v1.update while it fits the server's max payload, each host's
// view on sysperf.v1.update.<host> and the fleet view on sysperf.v1.fleet.
type publisher struct {
	log *slog.Logger
	// interest, with the embedded NATS, says whether anyone subscribes to
	// a subject: a view nobody reads is neither built nor sent. Nil (an
	// external NATS, which cannot be asked) publishes everything.
	interest func(subject string) bool
	// tooBig is set while the whole update is past the max payload, so
	// the WARN is logged once per crossing, not every tick.
	tooBig bool
}

// The whole update is encoded here only when NATS wants it; else the
// server encodes it if a browser or GET /api/v1/performance asks for it:
// a fleet's is megabytes, and was a tenth of the hub's CPU at 2,000 hosts.
func (p *publisher) publish(srv viewSource, nc natsPublisher, u *metrics.Update) {
	var full []byte
	if p.wanted(metrics.SubjectUpdate) {
		b, err := json.Marshal(u)
		if err != nil {
			p.log.Error("encode update", "err", err)
			return
		}
		full = b
	}
	srv.PublishUpdate(u, full)
	max := nc.MaxPayload()
	switch {
	case full == nil:
	case int64(len(full)) <= max:
		if p.tooBig {
			p.log.Info("whole update fits the NATS max payload again", "subject", metrics.SubjectUpdate, "bytes", len(full), "max_payload", max)
			p.tooBig = false
		}
		p.send(nc, metrics.SubjectUpdate, full)
	case !p.tooBig:
		p.tooBig = true
		p.log.Warn("whole update not published: past the NATS max payload; the per-host updates and the fleet view still are",
			"subject", metrics.SubjectUpdate, "bytes", len(full), "max_payload", max,
			"per_host", metrics.SubjectHostUpdates, "fleet", metrics.SubjectFleet)
	}
	for _, h := range u.Hosts {
		subject := metrics.UpdateSubject(h.Host)
		if !p.wanted(subject) {
			continue
		}
		if b, ok := srv.View(h.Host); ok {
			p.sendBounded(nc, subject, b, max)
		}
	}
	if !p.wanted(metrics.SubjectFleet) {
		return
	}
	if b, ok := srv.View(""); ok {
		p.sendBounded(nc, metrics.SubjectFleet, b, max)
	}
}

func (p *publisher) wanted(subject string) bool { return p.interest == nil || p.interest(subject) }

func (p *publisher) sendBounded(nc natsPublisher, subject string, b []byte, max int64) {
	if int64(len(b)) > max {
		p.log.Warn("view not published: past the NATS max payload", "subject", subject, "bytes", len(b), "max_payload", max)
		return
	}
	p.send(nc, subject, b)
}

func (p *publisher) send(nc natsPublisher, subject string, b []byte) {
	if err := nc.Publish(subject, b); err != nil {
		p.log.Warn("publish update", "subject", subject, "err", err)
	}
}
