package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// ingestCheck is how often the hub checks that its samples stream and
// consumer still exist and its store has room.
const ingestCheck = 2 * time.Second

// watchIngest keeps ingest honest: a connected NATS is not enough if the
// stream or the consumer is gone (deleted by hand, or lost with the store)
// or the store is full. /healthz says so until it is repaired.
func (h *Hub) watchIngest(ctx context.Context) {
	t := time.NewTicker(ingestCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.checkIngest(ctx)
		}
	}
}

// checkIngest recreates a vanished stream or consumer, logging an ERROR
// with what was lost, and sets the ingest part of the health check.
func (h *Hub) checkIngest(ctx context.Context) {
	if !h.nc.IsConnected() {
		return // health already says why
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := h.repairIngest(ctx)
	if err == nil {
		err = h.storeRoom(ctx)
	}
	prev := h.ingestDown.Load()
	switch {
	case err == nil && prev != nil:
		h.log.Info("ingest healthy again", "was", *prev)
		h.ingestDown.Store(nil)
	case err != nil:
		if prev == nil || (*prev).Error() != err.Error() {
			h.log.Error("ingest", "err", err)
		}
		h.ingestDown.Store(&err)
	}
}

func (h *Hub) repairIngest(ctx context.Context) error {
	h.ingestMu.Lock()
	defer h.ingestMu.Unlock()
	fresh := false
	_, err := h.js.Stream(ctx, metrics.StreamSamples)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		h.ingestDown.Store(ptr(fmt.Errorf("samples stream %s vanished; recreating it", metrics.StreamSamples)))
		h.log.Error("samples stream vanished: every sample it held is lost (history before now, agents' acknowledged samples); recreating it empty",
			"stream", metrics.StreamSamples, "handled_up_to_seq", h.in.lastSeq.Load())
		if _, err := natsx.EnsureSamplesStream(ctx, h.js, h.streamConfig()); err != nil {
			return fmt.Errorf("samples stream %s vanished and could not be recreated: %w", metrics.StreamSamples, err)
		}
		fresh = true
	case err != nil:
		return fmt.Errorf("samples stream %s: %w", metrics.StreamSamples, err)
	}
	if !fresh {
		_, err = h.js.Consumer(ctx, metrics.StreamSamples, h.cfg.Consumer)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("consumer %s: %w", h.cfg.Consumer, err)
		}
		h.ingestDown.Store(ptr(fmt.Errorf("the hub's consumer %s vanished; recreating it", h.cfg.Consumer)))
		h.log.Error("the hub's consumer vanished: no samples were read since; recreating it after the last sample handled",
			"consumer", h.cfg.Consumer, "resume_at_seq", h.in.lastSeq.Load()+1)
	}
	if h.cc != nil {
		h.cc.Stop()
	}
	cc, err := h.in.resume(ctx, h.js, h.cfg.Consumer, fresh)
	if err != nil {
		return fmt.Errorf("the hub's consumer %s vanished and could not be recreated: %w", h.cfg.Consumer, err)
	}
	h.cc = cc
	h.log.Info("ingest recreated", "consumer", h.cfg.Consumer, "stream_recreated", fresh)
	return nil
}

// storeRoom fails when JetStream's store is full, or nearly (the largest
// message would not fit): new samples are then refused by the server and
// lost unless agents keep them.
func (h *Hub) storeRoom(ctx context.Context) error {
	var used, limit int64
	if h.emb != nil {
		var err error
		if used, limit, err = h.emb.Store(); err != nil {
			return err
		}
	} else {
		ai, err := h.js.AccountInfo(ctx)
		if err != nil {
			return fmt.Errorf("jetstream account info: %w", err)
		}
		used, limit = int64(ai.Store), ai.Limits.MaxStore
	}
	if limit > 0 && used+natsx.MaxMsgSize >= limit {
		return fmt.Errorf("JetStream store full (%d of %d bytes): new samples, history and alert state are refused and lost", used, limit)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
