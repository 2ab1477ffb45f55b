package fsm_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// answerSession is a resumed session toward A on a node whose adapter
// stages under leases, with a window of 1 KiB (so the default queue bounds
// leave a lease's worth of slack for answers) and the given credit;
// queueMessages, when not 0, bounds the queue's messages.
func answerSession(t *testing.T, credit uint64, queueMessages int) *fsm.Node {
	t.Helper()
	n := sessionWith(t, credit, fsm.Config{ID: "M", Incarnation: 1, Window: 1 << 10, QueueMessages: queueMessages, Leases: true})
	if err := n.CheckStreams(); err != nil {
		t.Fatal(err)
	}
	return n
}

// streamOfAnswers steps the answers that fill n's queue toward A up to
// the stream's threshold (128 messages, two ACKs' worth), none of which
// may ask for a lease: a request/response rhythm's queue holds no more.
func streamOfAnswers(t *testing.T, n *fsm.Node) {
	t.Helper()
	for i := range 128 {
		if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("a")}); err != nil {
			t.Fatal(err)
		}
		if ls := leases(n.Ready()); len(ls) != 0 {
			t.Fatalf("leases after answer %d, with %d queued: %+v, want none", i, i+1, ls)
		}
	}
}

// An answer accepted by a step into a queue of up to 128 messages grants
// nothing (a ping-pong's, a session's only message: a lane would cost more
// than it saves). One that joins a stream grants room for answers only: no
// room for producers, who sent nothing (held, it would keep a large
// producer's message out of an empty queue). A producer's Send then adds
// the producers' room to the same lease; another answer, with the answer
// room whole, grants nothing.
func TestAnswerGrantsAnswerRoom(t *testing.T) {
	// A window of 64 KiB: the producers' share takes the stream's answers
	// and still has room.
	n := sessionWith(t, 1<<20, fsm.Config{ID: "M", Incarnation: 1, Window: 64 << 10, Leases: true})
	streamOfAnswers(t, n)
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("answer")}); err != nil {
		t.Fatal(err)
	}
	ls := leases(n.Ready())
	if len(ls) != 1 || ls[0].Lease.Messages != 0 || ls[0].Lease.Cost != 0 || ls[0].Lease.Answers != 1024 || ls[0].Lease.AnswerCost != 64<<10 || ls[0].Lease.Revoked() {
		t.Fatalf("leases after an answer: %+v, want one of answer room alone, 1,024 messages and 64 KiB", ls)
	}
	gen := ls[0].Lease.Gen
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("answer")}); err != nil {
		t.Fatal(err)
	}
	if more := leases(n.Ready()); len(more) != 0 {
		t.Fatalf("a second answer with the room whole: %+v, want no grant", more)
	}
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("request"), Reserve: true}); err != nil {
		t.Fatal(err)
	}
	more := leases(n.Ready())
	if len(more) != 1 || more[0].Lease.Gen != gen || more[0].Lease.Messages == 0 || more[0].Lease.Answers != 0 {
		t.Fatalf("a producer's Send: %+v, want room for producers on lease %d", more, gen)
	}
	if err := n.CheckStreams(); err != nil {
		t.Fatal(err)
	}
}

// Queue bounds that leave no slack past what "Room for answers" needs
// (7 W/32 + 5 messages for W = 1 KiB: 229) grant no answer room: the
// answers take steps, and the guarantee stays the one proved. (A window of
// 1 KiB is 32 messages of 32 bytes: the answers here are past the credit,
// queued and not written.)
func TestNoAnswerRoomWithoutSlack(t *testing.T) {
	for _, c := range []struct {
		msgs int
		want int // answer room granted
	}{{229, 0}, {230, 1}, {300, 71}, {1000, 771}, {2000, 1024}} {
		n := answerSession(t, 1<<20, c.msgs)
		streamOfAnswers(t, n)
		if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("answer")}); err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, l := range leases(n.Ready()) {
			got += l.Lease.Answers
		}
		if got != c.want {
			t.Fatalf("QueueMessages %d: answer room %d, want %d", c.msgs, got, c.want)
		}
	}
}

// An Admit's runs say which staged messages are answers: they are queued
// in the order staged, the answers counted as answers (the backlog flag's
// count), and each kind's room is spent by its own messages and renewed on
// its own terms.
func TestAdmitRunsQueueEachKind(t *testing.T) {
	n := answerSession(t, 0, 0) // no credit: everything stays queued
	_ = n.Step(0, fsm.Send{Peer: "A", Payload: []byte("p0"), Reserve: true})
	ls := leases(n.Ready())
	if len(ls) != 1 || ls[0].Lease.Messages == 0 || ls[0].Lease.Answers == 0 {
		t.Fatalf("a producer's Send: %+v, want room of both kinds", ls)
	}
	l := ls[0].Lease
	before := n.AnswersQueued("A")
	err := n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: staged("p1", "a1", "a2", "p2"), Messages: 4,
		Runs: []fsm.AdmitRun{{Messages: 1}, {Messages: 2, Answers: true}, {Messages: 1}}, Renew: true})
	if err != nil {
		t.Fatal(err)
	}
	more := leases(n.Ready())
	if got, want := n.AnswersQueued("A")-before, uint64(2*(2+fsm.MessageCost)); got != want {
		t.Fatalf("answers queued grew by %d, want %d (the two answers)", got, want)
	}
	// The answers' room comes back whole; the producers' does not, as the
	// queue now holds what their share allowed (the window, 1 KiB).
	if len(more) != 1 || more[0].Lease.Answers != 2 || more[0].Lease.AnswerCost != 2*(2+fsm.MessageCost) || more[0].Lease.Messages != 0 {
		t.Fatalf("renewal: %+v, want the 2 answers' room back and none for producers", more)
	}
	if err := n.CheckStreams(); err != nil {
		t.Fatal(err)
	}
	// Once credit comes, they go out in the order staged.
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}})
	if got := strings.Join(dataWritten(n.Ready()), " "); got != "p0 p1 a1 a2 p2" {
		t.Fatalf("DATA written: %q, want the order staged", got)
	}
}

// Staging more answers than the answer room is the adapter's bug: Admit
// panics, also when the producers' room could have taken them.
func TestAdmitPastTheAnswerRoomPanics(t *testing.T) {
	n := answerSession(t, 1<<20, 230) // one answer of room
	_ = n.Step(0, fsm.Send{Peer: "A", Payload: []byte("p0"), Reserve: true})
	l := leases(n.Ready())[0].Lease
	if l.Answers != 1 {
		t.Fatalf("lease %+v, want room for one answer", l)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("two answers admitted on room for one: no panic")
		}
	}()
	_ = n.Step(0, fsm.Admit{Peer: "A", Gen: l.Gen, Frames: staged("a1", "a2"), Messages: 2, Runs: []fsm.AdmitRun{{Messages: 2, Answers: true}}})
}

// The answer room counts against the queue's bounds; an answer the bounds
// then refuse gives it back: the lease ends in that step, so that the next
// answer has the queue's room again.
func TestRefusedAnswerGivesTheRoomBack(t *testing.T) {
	n := answerSession(t, 0, 232) // 3 answers of slack; no credit
	var gen uint64
	for i := 0; ; i++ {
		err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("a")})
		for _, a := range leases(n.Ready()) {
			if a.Lease.Revoked() {
				if err == nil {
					t.Fatalf("answer %d accepted and the lease revoked", i)
				}
				gen = 0
				continue
			}
			gen = a.Lease.Gen
		}
		if cerr := n.CheckStreams(); cerr != nil {
			t.Fatalf("after answer %d: %v", i, cerr)
		}
		if err != nil {
			if !errors.Is(err, fsm.ErrQueueFull) || gen != 0 {
				t.Fatalf("answer %d: %v, lease %d: want ErrQueueFull and the lease given back", i, err, gen)
			}
			// The room is the queue's again: one more answer fits.
			if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("a")}); err != nil {
				t.Fatalf("the answer after the room came back: %v", err)
			}
			if got := n.Peers()[0].Queued; got > 232 {
				t.Fatalf("%d queued, past the bound", got)
			}
			return
		}
		if i > 300 {
			t.Fatal("no answer refused past the queue's 232 messages")
		}
	}
}

// AppendRun keeps an Admit's runs as an adapter stages: nothing while only
// producers' messages come, then a producers' run of those before the first
// answer, and a run per change of kind.
func TestAppendRun(t *testing.T) {
	var runs []fsm.AdmitRun
	kinds := []bool{false, false, true, true, false, true}
	for i, answer := range kinds {
		runs = fsm.AppendRun(runs, i, answer)
		if i < 2 && runs != nil {
			t.Fatalf("after %d producers' messages: %v, want none", i+1, runs)
		}
	}
	want := []fsm.AdmitRun{{Messages: 2}, {Messages: 2, Answers: true}, {Messages: 1}, {Messages: 1, Answers: true}}
	if fmt.Sprint(runs) != fmt.Sprint(want) {
		t.Fatalf("runs %v, want %v", runs, want)
	}
	if got := fsm.AppendRun(nil, 0, true); fmt.Sprint(got) != fmt.Sprint([]fsm.AdmitRun{{Messages: 1, Answers: true}}) {
		t.Fatalf("an answer first: %v", got)
	}
}

// AppendFrameSize says the frames' length while every message staged has
// one payload length, and 0 from the first of another; the first message
// sets it whatever size held.
func TestAppendFrameSize(t *testing.T) {
	size := 0
	for i, c := range []struct{ n, want int }{{3, 8}, {3, 8}, {4, 0}, {3, 0}} {
		size = fsm.AppendFrameSize(size, i, c.n)
		if size != c.want {
			t.Fatalf("message %d of %d bytes: %d, want %d", i, c.n, size, c.want)
		}
	}
	if got := fsm.AppendFrameSize(0, 0, 0); got != wire.HeaderSize {
		t.Fatalf("the first message, empty, after a run of several lengths: %d, want %d", got, wire.HeaderSize)
	}
}
