//go:build cgo

// Package gpumock prepares go-nvml's mock servers for the GPU collector.
// The mock panics on any call a test has not given a function, and the
// collector's health reads go well past what the mock answers by default;
// NotSupported answers each of them the way a device without the feature
// does, so a test sets only the calls it is about.
package gpumock

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// NotSupported makes the XID event set, and every health call of every
// device of srv, answer ERROR_NOT_SUPPORTED.
func NotSupported(srv *server.Server) {
	srv.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
	srv.GpmSampleAllocFunc = func() (nvml.GpmSample, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
	for _, d := range srv.Devices {
		Device(d.(*server.Device))
	}
}

// Device makes every health call of d answer ERROR_NOT_SUPPORTED.
func Device(d *server.Device) {
	const ns = nvml.ERROR_NOT_SUPPORTED
	d.GetVbiosVersionFunc = func() (string, nvml.Return) { return "", ns }
	d.GetNvLinkStateFunc = func(int) (nvml.EnableState, nvml.Return) { return 0, ns }
	d.GpmQueryDeviceSupportFunc = func() (nvml.GpmSupport, nvml.Return) { return nvml.GpmSupport{}, ns }
	d.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return 0, ns }
	d.GetMaxPcieLinkGenerationFunc = func() (int, nvml.Return) { return 0, ns }
	d.GetMaxPcieLinkWidthFunc = func() (int, nvml.Return) { return 0, ns }
	d.GetCurrPcieLinkGenerationFunc = func() (int, nvml.Return) { return 0, ns }
	d.GetCurrPcieLinkWidthFunc = func() (int, nvml.Return) { return 0, ns }
	d.GetFieldValuesFunc = func([]nvml.FieldValue) nvml.Return { return ns }
	d.GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) { return 0, 0, ns }
	d.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 0, ns }
	d.GetRetiredPagesFunc = func(nvml.PageRetirementCause) ([]uint64, nvml.Return) { return nil, ns }
	d.GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { return 0, ns }
	d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, ns }
	d.GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, ns }
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 0, ns }
	d.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) { return 0, ns }
	d.RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return ns }
}
