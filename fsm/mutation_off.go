//go:build !masterless_mutation

package fsm

// mutation is empty in a build without the masterless_mutation tag: nothing
// can select a deliberately wrong rule, and each check below is the constant
// false, so the compiler removes the wrong branches. See mutation.go.
type mutation struct{}

func (mutation) dialerLeads() bool     { return false }
func (mutation) noLegacyUpgrade() bool { return false }
func (mutation) noResend() bool        { return false }
func (mutation) refuseWhenFull() bool  { return false }
func (mutation) noIDCheck() bool       { return false }
func (mutation) noCredit() bool        { return false }
func (mutation) noPacing() bool        { return false }
func (mutation) discoveryBothDial() bool {
	return false
}
func (mutation) redialStranger() bool    { return false }
func (mutation) redialWithSession() bool { return false }
func (mutation) dialWhileHandshaking() bool {
	return false
}
func (mutation) sendKeepsTime() bool           { return false }
func (mutation) lostAtOnce() bool              { return false }
func (mutation) unwantedFinal() bool           { return false }
func (mutation) graceIgnoresUnconfirmed() bool { return false }
func (mutation) leaseNotHeld() bool            { return false }
func (mutation) runAcrossActions() bool        { return false }
func (mutation) runMiscount() bool             { return false }
func (mutation) oneRedialLine() bool           { return false }
func (mutation) ignoreLag() bool               { return false }
func (mutation) sharedNoCopy() bool            { return false }
func (mutation) silentFirst() bool             { return false }
func (mutation) runPastCredit() bool           { return false }
func (mutation) answerRoomPastBounds() bool    { return false }
func (mutation) discoveryDropsWaiting() bool   { return false }
func (mutation) runFrameSize() bool            { return false }
func (mutation) windowPastMax() bool           { return false }
func (mutation) sizedPastCredit() bool         { return false }
