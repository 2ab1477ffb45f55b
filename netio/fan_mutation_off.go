//go:build !masterless_mutation

package netio

// mutationFanJoinsBusyLane is false outside the mutation build
// (fan_mutation.go).
const mutationFanJoinsBusyLane = false
