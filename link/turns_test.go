package link_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/masterless-go/masterless/link"
)

// turnItem is what the tests queue: a message of src (src != "") with its
// number among src's, or barrier number seq.
type turnItem struct {
	src string
	seq int
}

// TestTurnsOrder checks, over random pushes and pops, what Turns promises:
// every item comes out once; each source's messages in order; a barrier
// after everything pushed before it and before everything pushed after it;
// and a message whose turn can come (its source's earlier messages and the
// barriers before it are out) waits for at most TurnQuantum messages of
// each other source.
func TestTurnsOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q link.Turns[turnItem]
		nsrc := rapid.IntRange(1, 6).Draw(t, "sources")
		pushedAt := map[turnItem]int{} // push order
		var pushed []turnItem
		next := map[string]int{} // per source: next number pushed
		want := map[string]int{} // per source: next number popped
		var popped []turnItem
		eligible := map[turnItem]int{} // pops done when the message could first come out
		lastBarrier := -1              // index in pushed of the last barrier popped
		barriers := 0
		queued := 0
		// markEligible notes, for the head message of every source, when
		// its turn could first come (after the barriers pushed before it).
		heads := func() {
			for s := range nsrc {
				src := fmt.Sprintf("s%d", s)
				it := turnItem{src: src, seq: want[src]}
				at, ok := pushedAt[it]
				if !ok || at < lastBarrier {
					continue
				}
				if _, seen := eligible[it]; seen {
					continue
				}
				free := true
				for _, b := range pushed[lastBarrier+1 : at] {
					if b.src == "" {
						free = false
						break
					}
				}
				if free {
					eligible[it] = len(popped)
				}
			}
		}
		steps := rapid.IntRange(0, 400).Draw(t, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op < 5:
				src := fmt.Sprintf("s%d", rapid.IntRange(0, nsrc-1).Draw(t, "src"))
				it := turnItem{src: src, seq: next[src]}
				next[src]++
				pushedAt[it] = len(pushed)
				pushed = append(pushed, it)
				q.PushMessage(src, it)
				queued++
			case op == 5:
				it := turnItem{seq: barriers}
				barriers++
				pushedAt[it] = len(pushed)
				pushed = append(pushed, it)
				q.PushBarrier(it)
				queued++
			default:
				heads()
				chunk := q.PopChunk(nil, rapid.IntRange(1, 40).Draw(t, "chunk"))
				require.Equal(t, queued > 0, len(chunk) > 0, "PopChunk with %d queued", queued)
				for k, it := range chunk {
					if k > 0 {
						heads() // as if popped one after the other
					}
					queued--
					at := pushedAt[it]
					if it.src == "" {
						// Everything pushed before it is out, nothing after.
						for _, b := range pushed[:at] {
							_, out := find(popped, b)
							require.True(t, out, "barrier %d before %v, pushed before it", it.seq, b)
						}
						lastBarrier = at
					} else {
						require.Equal(t, want[it.src], it.seq, "%s's messages in order", it.src)
						want[it.src]++
						for _, b := range pushed[:at] {
							if b.src == "" {
								_, out := find(popped, b)
								require.True(t, out, "message %v before barrier %d, pushed before it", it, b.seq)
							}
						}
						e, ok := eligible[it]
						require.True(t, ok, "%v came out before its turn could come", it)
						others := 0
						for _, o := range popped[e:] {
							if o.src != "" && o.src != it.src {
								others++
							}
						}
						require.LessOrEqual(t, others, (nsrc-1)*link.TurnQuantum, "%v waited for %d messages of other sources", it, others)
					}
					popped = append(popped, it)
				}
			}
			require.Equal(t, queued, q.Len())
		}
		for q.Len() > 0 {
			_, ok := q.Pop()
			require.True(t, ok)
			queued--
		}
		require.Zero(t, queued)
		_, ok := q.Pop()
		require.False(t, ok)
	})
}

func find(items []turnItem, it turnItem) (int, bool) {
	for i, o := range items {
		if o == it {
			return i, true
		}
	}
	return 0, false
}

// TestTurnsBalance: a run of one source's messages pushed first does not
// make the others wait for it; they alternate.
func TestTurnsBalance(t *testing.T) {
	var q link.Turns[turnItem]
	for i := range 1000 {
		q.PushMessage("a", turnItem{src: "a", seq: i})
	}
	q.PushMessage("b", turnItem{src: "b", seq: 0})
	q.PushMessage("b", turnItem{src: "b", seq: 1})
	var got []string
	for range 5 {
		it, _ := q.Pop()
		got = append(got, fmt.Sprintf("%s%d", it.src, it.seq))
	}
	require.Equal(t, []string{"a0", "b0", "a1", "b1", "a2"}, got)

	// In chunks: up to TurnQuantum of a source per turn, one turn of each
	// source per chunk.
	var c link.Turns[turnItem]
	for i := range 100 {
		c.PushMessage("a", turnItem{src: "a", seq: i})
	}
	c.PushMessages("b", []turnItem{{src: "b", seq: 0}, {src: "b", seq: 1}})
	chunk := c.PopChunk(nil, link.DeliveryChunk)
	require.Len(t, chunk, link.TurnQuantum+2)
	require.Equal(t, turnItem{src: "a", seq: link.TurnQuantum - 1}, chunk[link.TurnQuantum-1])
	require.Equal(t, []turnItem{{src: "b", seq: 0}, {src: "b", seq: 1}}, chunk[link.TurnQuantum:])
	require.Equal(t, 100+2-len(chunk), c.Len())
	chunk = c.PopChunk(chunk[:0], link.DeliveryChunk)
	require.Len(t, chunk, link.TurnQuantum, "a alone: one turn per chunk")
	require.Equal(t, turnItem{src: "a", seq: link.TurnQuantum}, chunk[0])
}

// TestTurnsNewcomerWaitsOneTurn: a source whose message comes while a
// chunk of another's is being handed over waits for at most that chunk,
// one turn (a black-box audit: a chunk held four turns of the one source
// queued, and a newcomer waited behind up to 63 messages).
func TestTurnsNewcomerWaitsOneTurn(t *testing.T) {
	var q link.Turns[turnItem]
	for i := range 1000 {
		q.PushMessage("a", turnItem{src: "a", seq: i})
	}
	chunk := q.PopChunk(nil, link.DeliveryChunk) // handed over while b's message comes
	require.Len(t, chunk, link.TurnQuantum)
	q.PushMessage("b", turnItem{src: "b", seq: 0})
	chunk = q.PopChunk(chunk[:0], link.DeliveryChunk)
	at := slices.Index(chunk, turnItem{src: "b", seq: 0})
	require.GreaterOrEqual(t, at, 0, "b's message is not in the next chunk: %v", chunk)
	require.LessOrEqual(t, at, link.TurnQuantum, "b's message waited behind %d of a's", at)
}

// batchItem is a run of consecutive messages of src, numbers first to
// first+n-1 (n > 0), or barrier number first (src == "").
type batchItem struct {
	src      string
	first, n int
}

// batchCut is a Turns' Cut for batchItem: the first k messages of v, then
// the rest.
func batchCut(v batchItem, k int) (batchItem, batchItem) {
	if k <= 0 || k >= v.n {
		panic(fmt.Sprintf("Cut(%+v, %d)", v, k))
	}
	return batchItem{v.src, v.first, k}, batchItem{v.src, v.first + k, v.n - k}
}

// TestTurnsBatchesAsSingles: a queue that holds runs of messages as one
// item each (Count and Cut) hands over the same messages, in the same
// order and the same chunks, as one that holds each message on its own,
// whatever the pushes, barriers and chunk sizes; and counts the same
// length throughout. Its negative control is
// TestTurnsBatchesCatchesWrongCut.
func TestTurnsBatchesAsSingles(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pick := func(n int) int { return rapid.IntRange(0, n-1).Draw(t, "pick") }
		if err := runBatchTwins(pick, batchCut); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTurnsBatchesCatchesWrongCut is the negative control of
// TestTurnsBatchesAsSingles: with a Cut that hands over the last k
// messages of a batch before the others, the comparison must find a
// difference in some of a hundred fixed scripts; with the right Cut it
// finds none.
func TestTurnsBatchesCatchesWrongCut(t *testing.T) {
	backwards := func(v batchItem, k int) (batchItem, batchItem) {
		return batchItem{v.src, v.first + v.n - k, k}, batchItem{v.src, v.first, v.n - k}
	}
	caught := 0
	for seed := range uint64(100) {
		if err := runBatchTwins(rand.New(rand.NewPCG(seed, 3)).IntN, batchCut); err != nil {
			t.Fatalf("seed %d, the right Cut: %v", seed, err)
		}
		if runBatchTwins(rand.New(rand.NewPCG(seed, 3)).IntN, backwards) != nil {
			caught++
		}
	}
	require.Positive(t, caught, "a Cut that reorders a batch went unnoticed in 100 scripts")
	t.Logf("caught in %d of 100 scripts", caught)
}

// runBatchTwins runs one script, its choices made by pick (a number below
// its argument), through a queue of batches cut by cut and a queue of
// single messages, and returns how they differed, nil if they did not.
func runBatchTwins(pick func(n int) int, cut func(batchItem, int) (batchItem, batchItem)) error {
	batched := &link.Turns[batchItem]{Count: func(v batchItem) int { return v.n }, Cut: cut}
	var singles link.Turns[turnItem]
	nsrc := 1 + pick(4)
	next := map[string]int{}
	barriers := 0
	for step := range 1 + pick(60) {
		switch op := pick(10); {
		case op < 5: // a run of one source's messages, in one or more pushes
			src := fmt.Sprintf("s%d", pick(nsrc))
			var items []batchItem
			var ones []turnItem
			for range 1 + pick(3) {
				n := 1 + pick(40)
				items = append(items, batchItem{src, next[src], n})
				for i := range n {
					ones = append(ones, turnItem{src, next[src] + i})
				}
				next[src] += n
			}
			if len(items) == 1 && pick(2) == 0 {
				batched.PushMessage(src, items[0])
			} else {
				batched.PushMessages(src, items)
			}
			singles.PushMessages(src, ones)
		case op < 6:
			batched.PushBarrier(batchItem{first: barriers})
			singles.PushBarrier(turnItem{seq: barriers})
			barriers++
		default:
			max := 1 + pick(2*link.DeliveryChunk)
			want, got := singles.PopChunk(nil, max), flatten(batched.PopChunk(nil, max))
			if !slices.Equal(want, got) {
				return fmt.Errorf("step %d, a chunk of %d: singles %v, batches %v", step, max, want, got)
			}
		}
		if singles.Len() != batched.Len() {
			return fmt.Errorf("step %d: length %d with singles, %d with batches", step, singles.Len(), batched.Len())
		}
	}
	for singles.Len() > 0 {
		want, got := singles.PopChunk(nil, link.DeliveryChunk), flatten(batched.PopChunk(nil, link.DeliveryChunk))
		if !slices.Equal(want, got) {
			return fmt.Errorf("the last chunks: singles %v, batches %v", want, got)
		}
	}
	if batched.Len() != 0 {
		return fmt.Errorf("%d left with batches", batched.Len())
	}
	return nil
}

// flatten spells out the messages of batch items one by one.
func flatten(chunk []batchItem) []turnItem {
	var flat []turnItem
	for _, v := range chunk {
		if v.src == "" {
			flat = append(flat, turnItem{seq: v.first})
			continue
		}
		for i := range v.n {
			flat = append(flat, turnItem{v.src, v.first + i})
		}
	}
	return flat
}
