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

// fanMsg is message seq of producer p.
func fanMsg(p, seq uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, p), seq)
}

// fanInbox is what one receiver got, by producer, in order.
type fanInbox struct {
	mu  sync.Mutex
	got map[uint32][]uint32
}

func (b *fanInbox) add(p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	prod, seq := binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
	b.got[prod] = append(b.got[prod], seq)
}

// fanMesh starts a, and receivers ids recording what they get, connected
// from a; lost, if not nil, is a's Lost callback.
func fanMesh(t *testing.T, ids []string, lost func(string, [][]byte, error)) (*Runtime, map[string]*fanInbox) {
	t.Helper()
	boxes := map[string]*fanInbox{}
	a := startNode(t, fsm.Config{ID: "a"}, nil, Events{Lost: lost})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range ids {
		box := &fanInbox{got: map[uint32][]uint32{}}
		boxes[id] = box
		n := startNode(t, fsm.Config{ID: id}, nil, Events{Message: func(_ string, p []byte) { box.add(p) }})
		_, err := a.Connect(ctx, n.Info())
		require.NoError(t, err)
	}
	return a, boxes
}

// fanSent is what the producers sent each receiver, by producer, in order.
type fanSent struct {
	mu   sync.Mutex
	sent map[string]map[uint32][]uint32
}

func (s *fanSent) add(peers []string, p, seq uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range peers {
		if s.sent[id] == nil {
			s.sent[id] = map[uint32][]uint32{}
		}
		s.sent[id][p] = append(s.sent[id][p], seq)
	}
}

// fanCompare waits until every receiver got what was sent to it, and
// returns the first difference if one remains at the deadline.
func fanCompare(boxes map[string]*fanInbox, s *fanSent, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		var diff error
		for id, box := range boxes {
			box.mu.Lock()
			for p, want := range s.sent[id] {
				got := box.got[p]
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] { // final: what arrived stays
						box.mu.Unlock()
						return fmt.Errorf("%s got producer %d's message %d where %d was due (%d of %d got)", id, p, got[i], want[i], len(got), len(want))
					}
				}
				if diff == nil && len(got) != len(want) {
					diff = fmt.Errorf("%s got %d of producer %d's %d messages", id, len(got), p, len(want))
				}
				if diff != nil {
					break
				}
			}
			box.mu.Unlock()
			if diff != nil {
				break
			}
		}
		if diff == nil || time.Now().After(deadline) {
			return diff
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fanOrder runs three producers on a toward b, c and d: one sends mostly
// to all three (SendManyContext, staged in a fan), now and then to one
// peer (SendContext, Send) and in bursts to another list; one sends to all
// three too, sharing the fan; one streams to d alone. It returns the first
// message some receiver did not get in its producer's order, or not at
// all within the time given.
func fanOrder(t *testing.T, total uint32, within time.Duration) error {
	a, boxes := fanMesh(t, []string{"b", "c", "d"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := &fanSent{sent: map[string]map[uint32][]uint32{}}
	all := []string{"b", "c", "d"}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range total {
			var err error
			switch {
			case i%101 == 0:
				err = a.SendContext(ctx, "c", fanMsg(0, i))
				s.add([]string{"c"}, 0, i)
			case i%103 == 0:
				err = a.Send("b", fanMsg(0, i)) // an answer's path: after the fan's frames
				s.add([]string{"b"}, 0, i)
			case i%1000 < 40:
				_, err = a.SendManyContext(ctx, []string{"d", "c"}, fanMsg(0, i))
				s.add([]string{"d", "c"}, 0, i)
			default:
				_, err = a.SendManyContext(ctx, all, fanMsg(0, i))
				s.add(all, 0, i)
			}
			if err != nil {
				t.Errorf("producer 0, message %d: %v", i, err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range total / 2 {
			if _, err := a.SendManyContext(ctx, all, fanMsg(1, i)); err != nil {
				t.Errorf("producer 1, message %d: %v", i, err)
				return
			}
			s.add(all, 1, i)
		}
	})
	wg.Go(func() {
		for i := range total / 4 {
			if err := a.SendContext(ctx, "d", fanMsg(2, i)); err != nil {
				t.Errorf("producer 2, message %d: %v", i, err)
				return
			}
			s.add([]string{"d"}, 2, i)
		}
	})
	wg.Wait()
	require.Positive(t, a.fansMade.Load(), "no fan was made")
	return fanCompare(boxes, s, within)
}

// stagedInFan returns how many frames the fan of a's latest list staged.
func stagedInFan(a *Runtime) uint64 {
	m := a.manyLanes.Load()
	if m == nil {
		return 0
	}
	f := m.fan.Load()
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.staged
}

// Producers that mix SendManyContext to a list, staged once in the list's
// fan, with sends to one of its peers and to other lists, from several
// goroutines, have each of their messages delivered once, in the order
// each producer sent them; and a stream to one list goes through its fan.
func TestFanKeepsEachProducersOrder(t *testing.T) {
	require.NoError(t, fanOrder(t, 30000, 20*time.Second))

	a, boxes := fanMesh(t, []string{"b", "c", "d"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := &fanSent{sent: map[string]map[uint32][]uint32{}}
	all := []string{"b", "c", "d"}
	const n = 5000
	for i := range uint32(n) {
		k, err := a.SendManyContext(ctx, all, fanMsg(0, i))
		require.NoError(t, err)
		require.Equal(t, 3, k)
		s.add(all, 0, i)
	}
	require.NoError(t, fanCompare(boxes, s, 20*time.Second))
	require.Greater(t, stagedInFan(a), uint64(n/2), "a stream to one list staged in its fan")
}

// A fan's frames waiting for a peer whose session ends are handed back
// with its lane's (the revocation): every message to it is delivered or
// reported lost, none twice, and the other peers of the list get every
// message, in order, through the fan and after it.
func TestFanDisconnectHandsStagedBack(t *testing.T) {
	var mu sync.Mutex
	lost := map[uint32]int{}
	a, boxes := fanMesh(t, []string{"b", "c", "d"}, func(peer string, ps [][]byte, _ error) {
		if peer != "c" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, p := range ps {
			lost[binary.BigEndian.Uint32(p[4:])]++
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := []string{"b", "c", "d"}
	s := &fanSent{sent: map[string]map[uint32][]uint32{}}
	const before, after = 5000, 2000
	for i := range uint32(before) {
		_, err := a.SendManyContext(ctx, all, fanMsg(0, i))
		require.NoError(t, err)
		s.add([]string{"b", "d"}, 0, i)
	}
	require.Positive(t, stagedInFan(a), "the stream did not go through a fan")
	require.NoError(t, a.Disconnect("c"))
	for i := uint32(before); i < before+after; i++ {
		k, _ := a.SendManyContext(ctx, all, fanMsg(0, i))
		require.Equal(t, 2, k, "message %d: sent to b and d", i)
		s.add([]string{"b", "d"}, 0, i)
	}
	cBox := boxes["c"]
	delete(boxes, "c")
	require.NoError(t, fanCompare(boxes, s, 20*time.Second))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		cBox.mu.Lock()
		defer cBox.mu.Unlock()
		k := len(lost)
		for _, seq := range cBox.got[0] {
			if lost[seq] == 0 {
				k++
			}
		}
		return k == before
	}, 20*time.Second, 10*time.Millisecond, "every message to c delivered or reported lost")
	time.Sleep(100 * time.Millisecond) // nothing more may come
	mu.Lock()
	defer mu.Unlock()
	cBox.mu.Lock()
	defer cBox.mu.Unlock()
	got := map[uint32]int{}
	for i, seq := range cBox.got[0] {
		require.Equal(t, uint32(i), seq, "c's messages in order")
		got[seq]++
	}
	for seq := range uint32(before) {
		require.LessOrEqual(t, lost[seq], 1, "message %d reported lost twice", seq)
		require.Positive(t, got[seq]+lost[seq], "message %d neither delivered nor reported lost", seq)
	}
	for seq := range lost {
		require.Less(t, seq, uint32(before), "a message sent after Disconnect reported lost")
	}
}

// Once a fan-out is over, its lanes leave the fan as their writers go
// idle, giving back the room they held, and the fan lets go of its buffer.
func TestFanLetsGoWhenIdle(t *testing.T) {
	a, boxes := fanMesh(t, []string{"b", "c"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := []string{"b", "c"}
	s := &fanSent{sent: map[string]map[uint32][]uint32{}}
	for i := range uint32(3000) {
		_, err := a.SendManyContext(ctx, all, fanMsg(0, i))
		require.NoError(t, err)
		s.add(all, 0, i)
	}
	require.NoError(t, fanCompare(boxes, s, 20*time.Second))
	f := a.manyLanes.Load().fan.Load()
	require.NotNil(t, f, "no fan was made")
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := range f.slots {
			if f.slots[i].joined {
				return false
			}
		}
		return f.buf == nil
	}, 10*time.Second, 10*time.Millisecond, "the fan still holds its lanes or its buffer")
}
