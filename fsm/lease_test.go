package fsm_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// leases returns the ActLease actions among acts.
func leases(acts []fsm.Action) []fsm.Action {
	var out []fsm.Action
	for _, a := range acts {
		if a.Kind == fsm.ActLease {
			out = append(out, a)
		}
	}
	return out
}

// dataWritten returns the payloads of the DATA frames among acts.
func dataWritten(acts []fsm.Action) []string {
	var out []string
	for _, a := range splitAll(acts) {
		if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Data {
			out = append(out, string(a.Frame.Payload))
		}
	}
	return out
}

// staged encodes payloads as an adapter stages them.
func staged(payloads ...string) []byte {
	var b []byte
	for _, p := range payloads {
		b = wire.AppendData(b, []byte(p))
	}
	return b
}

// grant asks n for a lease toward A and returns it.
func grant(t *testing.T, n *fsm.Node, gen uint64) fsm.Lease {
	t.Helper()
	if err := n.Step(0, fsm.Admit{Peer: "A", Gen: gen, Renew: true}); err != nil {
		t.Fatal(err)
	}
	ls := leases(n.Ready())
	if len(ls) != 1 || ls[0].Lease.Messages == 0 {
		t.Fatalf("a request for a lease on a resumed session: %v, want one grant", ls)
	}
	return ls[0].Lease
}

// On a node whose adapter stages under leases (Config.Leases), a
// producer's Send accepted, of at most LeaseMaxPayload bytes, grants a
// lease in the same step; a larger one, an answer (no Reserve), a refused
// Send and a node without Config.Leases grant none.
func TestProducerSendGrantsLease(t *testing.T) {
	for _, c := range []struct {
		name            string
		leases, reserve bool
		size            int
		want            bool // a lease granted
	}{
		{"producer", true, true, 10, true},
		{"producer at the bound", true, true, fsm.LeaseMaxPayload, true},
		{"producer past the bound", true, true, fsm.LeaseMaxPayload + 1, false},
		{"answer", true, false, 10, false},
		{"refused", true, true, 2 << 20, false}, // past the queue's bytes: ErrPayloadTooLarge
		{"adapter without leases", false, true, 10, false},
	} {
		refused := c.size > 1<<20
		t.Run(c.name, func(t *testing.T) {
			n := sessionWith(t, 1<<20, fsm.Config{ID: "M", Incarnation: 1, Window: 1 << 20, QueueBytes: 1 << 20, Leases: c.leases})
			err := n.Step(0, fsm.Send{Peer: "A", Payload: make([]byte, c.size), Reserve: c.reserve})
			if (err != nil) != refused {
				t.Fatalf("Send: %v, want refused: %t", err, refused)
			}
			ls := leases(n.Ready())
			if got := len(ls) == 1 && ls[0].Lease.Messages > 0; got != c.want || len(ls) > 1 {
				t.Fatalf("leases after the Send: %+v, want a grant: %t", ls, c.want)
			}
		})
	}
}

// A lease is the room left in the producers' share (one window, here 1
// KiB, and half the queue's messages), at most 1,024 messages and 64 KiB of
// cost, and it counts as queued: while it holds the whole share, a
// producer's Send is refused, and an answer still goes.
func TestLeaseHoldsTheProducersShare(t *testing.T) {
	n := pacedSession(t, 1<<20)
	l := grant(t, n, 0)
	if l.Gen == 0 || l.Cost != 1<<10 || l.Messages != 1024 {
		t.Fatalf("lease %+v, want the whole share, cost 1024, in at most 1024 messages", l)
	}
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("x"), Reserve: true}); !errors.Is(err, fsm.ErrQueueFull) {
		t.Fatalf("a producer's Send while a lease holds the share: %v, want ErrQueueFull", err)
	}
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("answer")}); err != nil {
		t.Fatalf("an answer while a lease holds the share: %v", err)
	}
}

// Admit queues the staged messages in order and writes them within credit
// in one step, takes them off the lease, and a renewal adds only the room
// that acknowledgements freed.
func TestAdmitQueuesWritesAndRenews(t *testing.T) {
	n := pacedSession(t, 3*(1+fsm.MessageCost)) // credit for three one-byte messages
	l := grant(t, n, 0)
	err := n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: staged("a", "b", "c", "d"), Messages: 4, Renew: true})
	if err != nil {
		t.Fatal(err)
	}
	acts := n.Ready()
	if got := strings.Join(dataWritten(acts), ""); got != "abc" {
		t.Fatalf("DATA written: %q, want the three the credit allows, in order", got)
	}
	if got := n.Peers()[0].Queued; got != 4 {
		t.Fatalf("queue %d, want the 4 admitted", got)
	}
	// The lease still holds the rest of the share (1,024 less the 132 the
	// four cost): nothing to add until the peer acknowledges some.
	if more := leases(acts); len(more) != 0 {
		t.Fatalf("renewal with the share held: %v, want none", more)
	}
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Delivered: 3, Credit: 1 << 20}})
	n.Ready()
	_ = n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Renew: true})
	more := leases(n.Ready())
	if len(more) != 1 || more[0].Lease.Gen != l.Gen || more[0].Lease.Cost != 3*(1+fsm.MessageCost) {
		t.Fatalf("renewal after 3 were acknowledged: %v, want 99 more on lease %d", more, l.Gen)
	}
	if err := n.CheckStreams(); err != nil {
		t.Fatal(err)
	}
}

// Admitting more than the lease granted is the adapter's bug: the node
// panics rather than break the queue's bounds.
func TestAdmitPastTheLeasePanics(t *testing.T) {
	n := pacedSession(t, 1<<20)
	l := grant(t, n, 0)
	big := strings.Repeat("x", int(l.Cost))
	defer func() {
		if recover() == nil {
			t.Fatal("an Admit past its lease's cost did not panic")
		}
	}()
	_ = n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: staged(big), Messages: 1})
}

// The lease ends with its session: revoked at once. What was staged under
// it is still admitted: toward a kept peer it waits in the queue for the
// next session, without the producers' pacing; toward a peer no longer
// there it comes back as lost, since its producer was told it was taken.
func TestLeaseRevokedWithItsSession(t *testing.T) {
	n := pacedSession(t, 1<<20)
	l := grant(t, n, 0)
	_ = n.Step(0, fsm.ConnClosed{Conn: 1})
	ls := leases(n.Ready())
	if len(ls) != 1 || ls[0].Lease.Gen != l.Gen || ls[0].Lease.Messages != 0 {
		t.Fatalf("after the session ended: %v, want lease %d revoked", ls, l.Gen)
	}
	if err := n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: staged("kept"), Messages: 1}); err != nil {
		t.Fatal(err)
	}
	for _, a := range n.Ready() {
		if a.Kind == fsm.ActLost {
			t.Fatalf("a kept peer's staged message came back lost: %v", a.String())
		}
	}
	if got := n.Peers()[0].Queued; got != 1 {
		t.Fatalf("queue %d, want the staged message waiting for the next session", got)
	}
	// No lease without a session.
	_ = n.Step(0, fsm.Admit{Peer: "A", Renew: true})
	if ls := leases(n.Ready()); len(ls) != 0 {
		t.Fatalf("a lease without a session: %v", ls)
	}
	// A peer that is gone: the staged message is handed back.
	_ = n.Step(0, fsm.Disconnect{Peer: "A"})
	n.Ready()
	_ = n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: staged("late"), Messages: 1})
	var lost []fsm.Action
	for _, a := range n.Ready() {
		if a.Kind == fsm.ActLost {
			lost = append(lost, a)
		}
	}
	if len(lost) != 1 || len(lost[0].Lost) != 1 || string(lost[0].Lost[0]) != "late" || !errors.Is(lost[0].Err, fsm.ErrMessagesLost) {
		t.Fatalf("a staged message toward a peer gone: %v, want it lost", lost)
	}
}

// The peer's backlog flag revokes the lease (producers wait while it is
// set). The staged messages are admitted all the same: they were sent
// before the flag was heard.
func TestLeaseRevokedByTheBacklogFlag(t *testing.T) {
	n := pacedSession(t, 1<<20)
	l := grant(t, n, 0)
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20, Backlog: true}})
	if ls := leases(n.Ready()); len(ls) != 1 || ls[0].Lease.Messages != 0 || ls[0].Lease.Gen != l.Gen {
		t.Fatalf("after the flag: %v, want lease %d revoked", ls, l.Gen)
	}
	_ = n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: staged("sent before"), Messages: 1, Renew: true})
	acts := n.Ready()
	if got := dataWritten(acts); len(got) != 1 {
		t.Fatalf("the staged message: written %v, want it sent", got)
	}
	if ls := leases(acts); len(ls) != 0 {
		t.Fatalf("a lease while the flag holds producers: %v", ls)
	}
}

// Shutdown revokes every lease.
func TestLeaseRevokedAtShutdown(t *testing.T) {
	n := pacedSession(t, 1<<20)
	grant(t, n, 0)
	_ = n.Step(0, fsm.Shutdown{})
	if ls := leases(n.Ready()); len(ls) != 1 || ls[0].Lease.Messages != 0 {
		t.Fatalf("after Shutdown: %v, want the lease revoked", ls)
	}
}

// A peer this node does not keep, whose session ends while a lease toward
// it is outstanding, is waited for as one with queued messages (the lease
// may hold staged ones: sessionEnded) until the revoked lease's Admit says
// what it held: nothing, and the peer is down at once, as without a lease;
// a message, and it is waited for on its account.
func TestLeaseAwaySettledByItsAdmit(t *testing.T) {
	for _, k := range []int{0, 1} {
		n := pacedSession(t, 1<<20)
		l := grant(t, n, 0)
		_ = n.Step(0, fsm.SetKeep{Peer: "A", Keep: false})
		n.Ready()
		_ = n.Step(0, fsm.ConnClosed{Conn: 1})
		for _, a := range n.Ready() {
			if a.Kind == fsm.ActDisconnected {
				t.Fatalf("staged %d: Disconnected before the lease's Admit said what it held", k)
			}
		}
		var frames []byte
		if k > 0 {
			frames = staged("staged")
		}
		_ = n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: frames, Messages: k})
		down := false
		for _, a := range n.Ready() {
			down = down || a.Kind == fsm.ActDisconnected
		}
		if down != (k == 0) {
			t.Fatalf("staged %d: Disconnected after the Admit: %t", k, down)
		}
		if k > 0 && n.Peers()[0].Queued != 1 {
			t.Fatalf("the staged message is not waiting for the peer: %+v", n.Peers())
		}
	}
}

// A producer's message that fits in the share only without the room a
// lease holds (too large for the lane, which takes it only within the
// lease) is refused once; the refusal ends the lease, whose room goes back
// to the share, the producer hears of it (ActRoom), and the message goes
// when it asks again. (Without that it waited for ever with the queue
// empty.)
func TestRefusedProducerEndsTheLease(t *testing.T) {
	n := pacedSession(t, 1<<20)
	l := grant(t, n, 0)
	big := make([]byte, 1<<10-fsm.MessageCost) // the whole share of 1 KiB, held by the lease
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: big, Reserve: true}); !errors.Is(err, fsm.ErrQueueFull) {
		t.Fatalf("a producer's message the size of the share beside a lease: %v, want ErrQueueFull", err)
	}
	acts := n.Ready()
	ls, room := leases(acts), false
	for _, a := range acts {
		room = room || a.Kind == fsm.ActRoom
	}
	if len(ls) != 1 || ls[0].Lease.Gen != l.Gen || ls[0].Lease.Messages != 0 || !room {
		t.Fatalf("after the refusal: leases %v, room %t; want lease %d revoked and the producer told", ls, room, l.Gen)
	}
	_ = n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen}) // the adapter's admission of the revoked lane
	n.Ready()
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: big, Reserve: true}); err != nil {
		t.Fatalf("the producer's message once the lease gave its room back: %v", err)
	}
}

// A producer's SendMany (Reserve) of a payload below SharedMin is, for
// each peer, a producer's Send: each peer that took it is granted a lease
// in the same step, after all of its peers took theirs, so that a peer
// named twice takes both messages before the lease holds the rest of its
// share (here one window, 1 KiB). A payload of SharedMin bytes or more
// (the streams share one copy, which only a SendMany step makes), an
// answer (no Reserve), a peer that refused it and a node without
// Config.Leases grant none.
func TestProducerSendManyGrantsLease(t *testing.T) {
	for _, c := range []struct {
		name            string
		leases, reserve bool
		peers           []string
		size            int
		want            bool // a lease granted toward A
	}{
		{"producer", true, true, []string{"A"}, 10, true},
		{"below SharedMin", true, true, []string{"A"}, fsm.SharedMin - 1, true},
		{"at SharedMin", true, true, []string{"A"}, fsm.SharedMin, false},
		{"named twice", true, true, []string{"A", "A"}, 10, true},
		{"beside an unknown peer", true, true, []string{"nobody", "A"}, 10, true},
		{"answer", true, false, []string{"A"}, 10, false},
		{"adapter without leases", false, true, []string{"A"}, 10, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := sessionWith(t, 1<<20, fsm.Config{ID: "M", Incarnation: 1, Window: 1 << 10, Leases: c.leases})
			errs := make([]error, len(c.peers))
			_ = n.Step(0, fsm.SendMany{Peers: c.peers, Payload: make([]byte, c.size), Reserve: c.reserve, Errs: errs})
			for i, p := range c.peers {
				if (errs[i] == nil) != (p == "A") {
					t.Fatalf("SendMany to %q: %v", p, errs[i])
				}
			}
			ls := leases(n.Ready())
			if got := len(ls) == 1 && ls[0].Peer == "A" && ls[0].Lease.Messages > 0; got != c.want || len(ls) > 1 {
				t.Fatalf("leases after the SendMany: %+v, want a grant: %t", ls, c.want)
			}
		})
	}
}

// An Admit that says its frames have one length (FrameSize) is taken as
// the same Admit walked frame by frame: the same actions (the DATA written
// within the credit, the lease renewed), views and streams, for runs of
// producers' messages and answers, part of them past the credit; and the
// same panic past the lease.
func TestAdmitBySizeIsAdmitWalked(t *testing.T) {
	for _, c := range []struct {
		name     string
		payload  int
		messages int
		runs     []fsm.AdmitRun
	}{
		{"one", 5, 1, nil},
		{"producers", 8, 20, nil},
		{"empty payloads", 0, 9, nil},
		{"answers between", 7, 12, []fsm.AdmitRun{{Messages: 3}, {Messages: 4, Answers: true}, {Messages: 5}}},
		{"answers only", 20, 10, []fsm.AdmitRun{{Messages: 10, Answers: true}}},
	} {
		var frames []byte
		for i := range c.messages {
			frames = wire.AppendData(frames, []byte(strings.Repeat(string(rune('a'+i%26)), c.payload)))
		}
		var views [2]string
		for i, size := range []int{0, wire.DataFrameSize(c.payload)} {
			n := answerSession(t, 300, 0) // credit for some of them
			_ = n.Step(0, fsm.Send{Peer: "A", Payload: []byte("p0"), Reserve: true})
			ls := leases(n.Ready())
			if len(ls) != 1 || ls[0].Lease.Messages == 0 || ls[0].Lease.Answers == 0 {
				t.Fatalf("a producer's Send: %+v, want room of both kinds", ls)
			}
			l := ls[0].Lease
			err := n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: frames, Messages: c.messages, Runs: c.runs, Renew: true, FrameSize: size})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.CheckStreams(); err != nil {
				t.Fatalf("%s, FrameSize %d: %v", c.name, size, err)
			}
			views[i] = strings.Join(render(n.Ready()), "\n") + fmt.Sprintf("\n%+v %+v", n.Peers(), n.Counters())
		}
		if views[0] != views[1] {
			t.Errorf("%s: walked:\n%s\nby size:\n%s", c.name, views[0], views[1])
		}
	}
	// A lease's whole room, bound by its count of messages (empty
	// payloads: 1,024 of them cost less than its 64 KiB), and a lease
	// revoked before its Admit (the session closed: the messages are taken
	// one by one as late ones, FrameSize or not).
	empty := wire.AppendData(nil, nil)
	for _, revoked := range []bool{false, true} {
		var views [2]string
		for i, size := range []int{0, len(empty)} {
			n := sessionWith(t, 1<<20, fsm.Config{ID: "M", Incarnation: 1, Window: 1 << 20})
			l := grant(t, n, 0)
			if revoked {
				_ = n.Step(0, fsm.ConnClosed{Conn: 1})
				n.Ready()
			}
			frames := []byte(strings.Repeat(string(empty), l.Messages))
			if err := n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: frames, Messages: l.Messages, FrameSize: size}); err != nil {
				t.Fatal(err)
			}
			if err := n.CheckStreams(); err != nil {
				t.Fatalf("revoked %t, FrameSize %d: %v", revoked, size, err)
			}
			views[i] = strings.Join(render(n.Ready()), "\n") + fmt.Sprintf("\n%+v %+v", n.Peers(), n.Counters())
		}
		if views[0] != views[1] {
			t.Errorf("the lease's whole room (revoked %t): walked:\n%s\nby size:\n%s", revoked, views[0], views[1])
		}
	}
	// Past the lease, by its cost and by its count.
	for _, c := range []struct {
		what    string
		payload int
		more    func(l fsm.Lease, payloadCost uint64) int
	}{
		{"cost", 100, func(l fsm.Lease, pc uint64) int { return int(l.Cost/pc) + 1 }},
		{"count", 0, func(l fsm.Lease, _ uint64) int { return l.Messages + 1 }},
	} {
		for _, size := range []int{0, wire.DataFrameSize(c.payload)} {
			n := sessionWith(t, 1<<20, fsm.Config{ID: "M", Incarnation: 1, Window: 1 << 20})
			l := grant(t, n, 0)
			k := c.more(l, uint64(c.payload)+fsm.MessageCost) // one more than the lease allows
			frames := []byte(strings.Repeat(string(wire.AppendData(nil, make([]byte, c.payload))), k))
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("FrameSize %d: an Admit past its lease's %s did not panic", size, c.what)
					}
				}()
				_ = n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: frames, Messages: k, FrameSize: size})
			}()
		}
	}
}

// An Admit whose frames are not Messages frames of FrameSize bytes (more
// bytes, fewer, or a first frame of another length), or whose runs do not
// add up to Messages, is the adapter's bug: the node panics rather than
// queue bytes that are not those messages.
func TestAdmitOfAnotherSizePanics(t *testing.T) {
	two := staged("ab", "cd") // two frames of 7 bytes
	for _, c := range []struct {
		name   string
		frames []byte
		size   int
		runs   []fsm.AdmitRun
	}{
		{"runs of more messages", two, 7, []fsm.AdmitRun{{Messages: 1}, {Messages: 2, Answers: true}}},
		{"frames longer than said", two, 6, nil},
		{"frames shorter than said", two, 8, nil},
		{"a size below a header", staged("", ""), 3, nil},
		{"the first frame of another length", staged("a", "bcd"), 7, nil}, // 6 + 8 bytes: the total fits
	} {
		func() {
			n := pacedSession(t, 1<<20)
			l := grant(t, n, 0)
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			_ = n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: c.frames, Messages: 2, FrameSize: c.size, Runs: c.runs})
		}()
	}
}
