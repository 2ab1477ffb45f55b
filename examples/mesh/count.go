package main

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/masterless-go/masterless"
)

// confirmEvery is how often, once the events say every node of a block has
// all its peers, Connections confirms it again.
const confirmEvery = 100 * time.Millisecond

// counter counts the connections of a block of servers cheaply. Watching the
// mesh form by calling Connections on every node every few milliseconds
// would cost a sorted copy of its peers, under its core lock, each time:
// at 256 nodes a good part of what the machine spends while the mesh forms.
// So each server's Connect and Disconnect events keep a count, and only when
// every count is complete does Connections (what the example reports)
// confirm them, then again every confirmEvery while they stay complete. (A
// peer that reconnects within the reconnect grace gets no Disconnect, so the
// events alone could count a session that is briefly gone.)
type counter struct {
	servers   []*masterless.Server
	events    []atomic.Int32 // Connect events minus Disconnect events, per server
	want      int            // connections per node in a full mesh
	confirmed time.Time      // when Connections last confirmed complete counts
}

// newCounter returns a counter for count servers in a mesh of n, and the
// option that feeds the k-th server's events into it; set servers once
// they have started.
func newCounter(count, n int) (*counter, func(k int) masterless.Option) {
	c := &counter{events: make([]atomic.Int32, count), want: n - 1}
	return c, func(k int) masterless.Option {
		return masterless.WithEvents(masterless.Events{
			Connect:    func(*masterless.Server, string, string) { c.events[k].Add(1) },
			Disconnect: func(*masterless.Server, string, error) { c.events[k].Add(-1) },
		})
	}
}

// count sets counts[k] to the connections of servers[k]: from the events
// while some node lacks peers, and from Connections once they all have them.
func (c *counter) count(counts []int) {
	complete := true
	for k := range c.servers {
		counts[k] = int(c.events[k].Load())
		complete = complete && counts[k] == c.want
	}
	if !complete {
		c.confirmed = time.Time{}
		return
	}
	if !c.confirmed.IsZero() && time.Since(c.confirmed) < confirmEvery {
		return
	}
	c.exact(counts)
}

// exact sets counts[k] to len(servers[k].Connections()).
func (c *counter) exact(counts []int) {
	complete := true
	for k, s := range c.servers {
		counts[k] = len(s.Connections())
		complete = complete && counts[k] == c.want
	}
	c.confirmed = time.Time{}
	if complete {
		c.confirmed = time.Now()
	}
}

// startCounted starts count servers, node-FIRST onwards of a mesh of n, with
// opts, and a counter of their connections.
func startCounted(first, count, n int, logger *slog.Logger, opts ...masterless.Option) (*counter, error) {
	c, watch := newCounter(count, n)
	servers := make([]*masterless.Server, 0, count)
	for k := range count {
		s, err := masterless.New(nodeID(first+k), append(append([]masterless.Option{masterless.WithLogger(logger), watch(k)}, heartbeatOptions()...), opts...)...)
		if err != nil {
			closeAll(servers)
			return nil, err
		}
		servers = append(servers, s)
	}
	c.servers = servers
	return c, nil
}
