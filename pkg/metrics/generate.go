package metrics

// The page's TypeScript types are generated from this package's JSON types
// (and the hub's REST bodies); see internal/tsgen.
//go:generate go run ../../cmd/tsgen -root ../..
