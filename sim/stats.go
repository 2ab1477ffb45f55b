package sim

import (
	"fmt"
	"strings"

	"github.com/masterless-go/masterless/wire"
)

// Stats counts what a run exercised, so a sweep can show that the rare paths
// (duplicates, stale incarnations, replacements, timeouts) were taken and a
// green sweep is not green for want of trying.
type Stats struct {
	Frames                              [8]int  // frames received, by type (index 7 and above: BYE)
	Byes                                [12]int // BYE frames received, by code (11: unknown codes)
	Conns                               int     // connections opened
	Crashes, Restarts, Resets, Silences int
	Adversary                           AdversaryStats // what adversaries did (adversary.go)
	// With bounded socket buffers: Writes that timed out (the peer read
	// nothing for the peer timeout) and closes whose linger expired.
	WriteTimeouts, Lingers int
	// The no-lost-while-kept check (spec.LostLedger): LostExercised counts
	// the sessions of a kept pair that ended at the end that does not keep
	// it while it held messages not yet acknowledged (the case the rule is
	// about), LostJudged the Lost events it held to the reconnect grace.
	LostExercised, LostJudged int
	// With Knobs.LateTicks: the Ticks that came late, and the sessions
	// such a Tick gave a grace rather than a peer timeout (fsm's
	// NodeCounters.PauseGraces; a node's count is taken when it crashes and
	// at the end of the run).
	LateTicks, PauseGraces int
	// The times a node's window toward a peer grew (fsm's
	// NodeCounters.WindowsGrown, taken as PauseGraces is).
	WindowsGrown int
	// With Knobs.LateReads: the stalls of a node's readers (stall.go).
	ReadStalls int
	// With Knobs.Leases (lanes.go): the messages producers staged, the
	// leases revoked with messages staged, and those messages, admitted
	// after the revocation (handed back as lost if the peer could no
	// longer take them).
	Staged, RevokedBatches, RevokedStaged int
	AnswersStaged                         int // answers staged in a lease's room for answers (answerSend)
	// The Admits of lanes that held messages, and those whose messages had
	// one length, said so (fsm.Admit.FrameSize) and taken by arithmetic.
	Admits, SizedAdmits int
	// Runs of DATA frames read together and taken in one step
	// (fsm.DataReceived), and the frames in them (counted in Frames too).
	DataRuns, DataRunFrames int
	// With Knobs.SendMany: the SendManys stepped, the messages they put in
	// a stream (one per peer that accepted), and the SendManys whose
	// payload several streams accepted and share (600 bytes: one copy);
	// with Knobs.Leases too, the producers' SendManys (Reserve, as
	// netio's SendManyContext) and the messages they staged in lanes.
	SendManys, SendManyMessages, SendManyShared int
	ProducerSendManys, SendManyStaged           int
}

// Add adds o to s.
func (s *Stats) Add(o *Stats) {
	for i := range s.Frames {
		s.Frames[i] += o.Frames[i]
	}
	for i := range s.Byes {
		s.Byes[i] += o.Byes[i]
	}
	s.Conns += o.Conns
	s.Crashes += o.Crashes
	s.Restarts += o.Restarts
	s.Resets += o.Resets
	s.Silences += o.Silences
	s.LateTicks += o.LateTicks
	s.ReadStalls += o.ReadStalls
	s.PauseGraces += o.PauseGraces
	s.WindowsGrown += o.WindowsGrown
	s.Adversary.Add(&o.Adversary)
	s.WriteTimeouts += o.WriteTimeouts
	s.Lingers += o.Lingers
	s.LostExercised += o.LostExercised
	s.LostJudged += o.LostJudged
	s.Staged += o.Staged
	s.AnswersStaged += o.AnswersStaged
	s.Admits += o.Admits
	s.SizedAdmits += o.SizedAdmits
	s.RevokedBatches += o.RevokedBatches
	s.RevokedStaged += o.RevokedStaged
	s.DataRuns += o.DataRuns
	s.DataRunFrames += o.DataRunFrames
	s.SendManys += o.SendManys
	s.SendManyMessages += o.SendManyMessages
	s.SendManyShared += o.SendManyShared
	s.ProducerSendManys += o.ProducerSendManys
	s.SendManyStaged += o.SendManyStaged
}

// String renders the counts on one line, as simsweep prints them.
func (s *Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conns=%d crashes=%d restarts=%d resets=%d silences=%d write-timeouts=%d lingers=%d kept-pair-ends=%d lost-after-grace=%d late-ticks=%d read-stalls=%d pause-graces=%d windows-grown=%d",
		s.Conns, s.Crashes, s.Restarts, s.Resets, s.Silences, s.WriteTimeouts, s.Lingers, s.LostExercised, s.LostJudged, s.LateTicks, s.ReadStalls, s.PauseGraces, s.WindowsGrown)
	fmt.Fprintf(&b, " staged=%d answers-staged=%d admits=%d sized-admits=%d revoked-batches=%d revoked-staged=%d data-runs=%d data-run-frames=%d", s.Staged, s.AnswersStaged, s.Admits, s.SizedAdmits, s.RevokedBatches, s.RevokedStaged, s.DataRuns, s.DataRunFrames)
	if s.SendManys > 0 {
		fmt.Fprintf(&b, " sendmanys=%d sendmany-messages=%d sendmany-shared=%d producer-sendmanys=%d sendmany-staged=%d", s.SendManys, s.SendManyMessages, s.SendManyShared, s.ProducerSendManys, s.SendManyStaged)
	}
	b.WriteString(" frames:")
	for t := wire.Hello; t <= wire.Bye; t++ {
		fmt.Fprintf(&b, " %s=%d", t, s.Frames[t])
	}
	b.WriteString(" byes:")
	for c := range s.Byes {
		if s.Byes[c] > 0 {
			fmt.Fprintf(&b, " %s=%d", wire.Code(c), s.Byes[c])
		}
	}
	if a := s.Adversary; a.Conns > 0 {
		fmt.Fprintf(&b, " adversary: conns=%d frames=%d refused=%d evicted=%d", a.Conns, a.Frames, a.Refused, a.Evicted)
	}
	return b.String()
}
