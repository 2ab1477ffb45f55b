//go:build masterless_mutation

package netio

// mutationFanJoinsBusyLane, in the mutation build, lets a lane that holds
// messages of its own join a fan (fan.reserve): the fan's frames are then
// admitted before them, out of order. The negative control of the fan
// tests (TestFanCatchesBusyLaneJoining).
const mutationFanJoinsBusyLane = true
