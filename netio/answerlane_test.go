package netio

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
)

// answersStaged returns how many answers a's lane toward peer staged, and
// the answer room its lease has left.
func answersStaged(a *Runtime, peer string) (staged uint64, room int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.laneIn(peer)
	if l == nil {
		return 0, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answers, l.amsgs
}

// An echo: each node's producer streams requests to the other
// (SendContext), and each callback answers every request to its sender
// (Send). With the writers busy, answers are staged in the lane, in the
// room the lease holds for them (fsm/lease.go, "Room for answers"), beside
// the producer's requests. Every request and every answer arrives exactly
// once, each kind in the order sent (an answer in the order of its
// requests), and some answers did take the lane.
func TestEchoAnswersTakeTheLane(t *testing.T) {
	const total = 20000
	type inbox struct {
		mu      sync.Mutex
		reqs    []uint32 // the requests received, in order
		answers []uint32 // the answers received, in order
		done    chan struct{}
	}
	kind := func(p []byte) (byte, uint32) { return p[0], binary.BigEndian.Uint32(p[1:]) }
	msg := func(k byte, i uint32) []byte { return binary.BigEndian.AppendUint32([]byte{k}, i) }
	boxes := map[string]*inbox{}
	nodes := map[string]*Runtime{}
	var answerErr sync.Once
	var failed error
	for _, id := range []string{"a", "b"} {
		box := &inbox{done: make(chan struct{})}
		boxes[id] = box
		var self *Runtime
		self = startNode(t, fsm.Config{ID: id}, nil, Events{Message: func(from string, p []byte) {
			k, i := kind(p)
			box.mu.Lock()
			if k == 'q' {
				box.reqs = append(box.reqs, i)
			} else {
				box.answers = append(box.answers, i)
			}
			if len(box.reqs) == total && len(box.answers) == total {
				close(box.done)
			}
			box.mu.Unlock()
			if k == 'q' {
				if err := self.Send(from, msg('r', i)); err != nil {
					answerErr.Do(func() { failed = err })
				}
			}
		}})
		nodes[id] = self
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := nodes["a"].Connect(ctx, nodes["b"].Info())
	require.NoError(t, err)
	var wg sync.WaitGroup
	for from, to := range map[string]string{"a": "b", "b": "a"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint32(total) {
				if err := nodes[from].SendContext(ctx, to, msg('q', i)); err != nil {
					t.Errorf("%s's request %d: %v", from, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for id, box := range boxes {
		select {
		case <-box.done:
		case <-ctx.Done():
			box.mu.Lock()
			t.Fatalf("%s got %d requests and %d answers of %d each", id, len(box.reqs), len(box.answers), total)
		}
	}
	require.NoError(t, failed, "a callback's answer was refused")
	var staged uint64
	for id, box := range boxes {
		box.mu.Lock()
		for i := range uint32(total) {
			require.Equal(t, i, box.reqs[i], "%s's request %d", id, i)
			require.Equal(t, i, box.answers[i], "%s's answer %d", id, i)
		}
		box.mu.Unlock()
		peer := map[string]string{"a": "b", "b": "a"}[id]
		s, _ := answersStaged(nodes[id], peer)
		staged += s
	}
	t.Logf("%d of %d answers staged in the lanes", staged, 2*total)
	require.Positive(t, staged, "no answer took the lane")
}

// An answer is staged only while the session's writer is busy: with the
// writer parked, Send takes the step (whose write may go inline), and the
// lane stays empty; an answer accepted by a step into a stream (more than
// 128 messages not yet acknowledged) grants room for answers.
func TestAnswerNotStagedWithWriterParked(t *testing.T) {
	const most = 50000
	got := make(chan uint32, most+1)
	a, _ := lanePair(t, func(_ string, p []byte) { got <- binary.BigEndian.Uint32(p) })
	// Sends in a burst outrun the ACKs (one every 64 messages received):
	// once more than 128 wait, the next one's step grants room for answers.
	sent, room := uint32(0), 0
	for ; room == 0 && sent < most; sent++ {
		require.NoError(t, a.Send("b", seqPayload(sent)))
		_, room = answersStaged(a, "b")
	}
	require.Positive(t, room, "no room for answers after %d answers' steps", sent)
	for i := range sent {
		require.Equal(t, i, <-got)
	}
	time.Sleep(50 * time.Millisecond) // the writer, if any, parks
	a.mu.Lock()
	l := a.laneIn("b")
	a.mu.Unlock()
	require.NotNil(t, l)
	l.c.wmu.Lock()
	idle := l.c.idle
	l.c.wmu.Unlock()
	require.True(t, idle, "the writer is not parked after 50 ms of quiet")
	require.False(t, l.stageAnswer(seqPayload(sent)), "an answer staged with the writer parked")
	require.NoError(t, a.Send("b", seqPayload(sent)))
	require.Equal(t, sent, <-got)
	staged, _ := answersStaged(a, "b")
	require.Zero(t, staged)
}

// An answer that is its lane's first takes the connection's wmu to tell
// the writer, while the writer trims the lane under wmu: taking lane.mu
// first and wmu under it deadlocked against the trim (a black-box audit:
// both nodes of an echo wedged for good, Close too, under -race). Here the
// two run against each other a hundred thousand times.
func TestAnswerStagingAgainstTrim(t *testing.T) {
	c := &conn{} // not idle: told, never woken
	l := &lane{peer: "p", gen: 1, amsgs: 1 << 30, acost: 1 << 40, maxPayload: 64, c: c}
	const rounds = 100000
	trimmed, staged := make(chan struct{}), make(chan error, 1)
	go func() { // the writer's trim, under wmu
		defer close(trimmed)
		for range rounds {
			c.wmu.Lock()
			l.trim()
			c.wmu.Unlock()
		}
	}()
	go func() {
		for i := range rounds {
			if !l.stageAnswer([]byte("a")) {
				staged <- fmt.Errorf("answer %d not staged", i)
				return
			}
			l.take() // empty again: the next answer is the lane's first
		}
		staged <- nil
	}()
	timeout := time.After(20 * time.Second)
	select {
	case <-trimmed:
	case <-timeout:
		t.Fatal("the trim and an answer's staging wait for each other")
	}
	select {
	case err := <-staged:
		require.NoError(t, err)
	case <-timeout:
		t.Fatal("the trim and an answer's staging wait for each other")
	}
	c.wmu.Lock()
	require.True(t, c.laneWork, "the writer was not told of the lane's answers")
	c.wmu.Unlock()
}
