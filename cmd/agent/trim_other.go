//go:build !linux

package main

import "errors"

// startupMappings is Linux's (trim_linux.go); elsewhere nothing is trimmed.
type startupMappings struct{}

func snapshotMappings(string) (startupMappings, error) {
	return startupMappings{}, errors.New("trimming start-up pages needs Linux")
}

func (startupMappings) trim(string) (uint64, error) { return 0, nil }
