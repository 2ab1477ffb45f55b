package masterless_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/masterless-go/masterless"
)

var quiet = masterless.WithLogger(slog.New(slog.DiscardHandler))

// Two servers pass a counter back and forth, as in the seed's README: each
// Message handler replies with Send from inside the handler.
func Example() {
	done := make(chan struct{})
	onMessage := func(s *masterless.Server, from string, payload []byte) {
		var packet struct {
			Type  string `json:"type"`
			Total int    `json:"total"`
		}
		if err := masterless.DecodeJSON(payload, &packet); err != nil || packet.Type != "counter" {
			return
		}
		if packet.Total == 100 {
			fmt.Println("counter at", packet.Total, "on", s.ID())
			close(done)
			return
		}
		packet.Total++
		_ = s.SendJSON(from, packet)
	}
	left, _ := masterless.New("e4663c9c3f9a89112afc48389a951e09", quiet,
		masterless.WithEvents(masterless.Events{Message: onMessage}))
	defer left.Close()
	right, _ := masterless.New("b073a8ee09e1daca57e9d54a5efe5684", quiet,
		masterless.WithEvents(masterless.Events{
			Message: onMessage,
			Connect: func(s *masterless.Server, id, _ string) {
				_ = s.SendJSON(id, map[string]any{"type": "counter", "total": 0})
			},
		}))
	defer right.Close()

	if _, err := right.Connect(context.Background(), left.Info()); err != nil {
		fmt.Println(err)
		return
	}
	<-done
	// Output: counter at 100 on e4663c9c3f9a89112afc48389a951e09
}

func ExampleServer_Connect() {
	a, _ := masterless.New("a", quiet)
	defer a.Close()
	b, _ := masterless.New("b", quiet)
	defer b.Close()

	id, err := a.Connect(context.Background(), b.Info())
	fmt.Println(id, err, a.IsKept("b"))
	// Connecting again, or from the other side, reuses the one connection.
	id, err = b.Connect(context.Background(), a.Info())
	fmt.Println(id, err, a.Connections(), b.Connections())
	// Output:
	// b <nil> true
	// a <nil> [b] [a]
}

func ExampleServer_Connect_self() {
	a, _ := masterless.New("a", quiet)
	defer a.Close()
	_, err := a.Connect(context.Background(), a.Info())
	fmt.Println(errors.Is(err, masterless.ErrSelfConnect))
	// Output: true
}

func ExampleServer_Send() {
	got := make(chan string, 1)
	a, _ := masterless.New("a", quiet, masterless.WithEvents(masterless.Events{
		Message: func(_ *masterless.Server, from string, payload []byte) {
			got <- from + " says " + string(payload)
		},
	}))
	defer a.Close()
	b, _ := masterless.New("b", quiet)
	defer b.Close()
	if _, err := b.Connect(context.Background(), a.Info()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.Send("a", []byte("hello")))
	fmt.Println(<-got)
	fmt.Println(b.Send("nobody", []byte("lost")))
	// Output:
	// true
	// b says hello
	// false
}

func ExampleServer_SendMany() {
	hub, _ := masterless.New("hub", quiet)
	defer hub.Close()
	var leaves []string
	for _, id := range []string{"x", "y", "z"} {
		leaf, _ := masterless.New(id, quiet)
		defer leaf.Close()
		if _, err := leaf.Connect(context.Background(), hub.Info()); err != nil {
			fmt.Println(err)
			return
		}
		leaves = append(leaves, id)
	}
	for len(hub.Connections()) < len(leaves) { // the hub learns of each leaf a moment later
		time.Sleep(time.Millisecond)
	}
	fmt.Println(hub.SendMany(leaves, []byte("to everyone")))
	// Output: 3
}

func ExampleServer_Keep() {
	events := make(chan string, 4)
	a, _ := masterless.New("a", quiet, masterless.WithEvents(masterless.Events{
		Disconnect: func(_ *masterless.Server, id string, err error) { events <- "lost " + id },
	}))
	defer a.Close()
	b, _ := masterless.New("b", quiet)
	defer b.Close()
	_, _ = a.Connect(context.Background(), b.Info())
	// Neither side keeping the pair closes its connection.
	_ = a.Keep("b", false)
	fmt.Println(<-events)
	// Output: lost b
}

// Three nodes that prove who they are: each has an identity (an Ed25519 key
// and a certificate naming its id) and pins the others' public keys. Every
// connection is TLS 1.3 with both certificates, and a node without a pinned
// key cannot join.
func ExampleWithIdentity() {
	ids := map[string]*masterless.Identity{}
	keys := map[string]ed25519.PublicKey{}
	for _, id := range []string{"a", "b", "c"} {
		ids[id], _ = masterless.NewIdentity(id) // or masterless.LoadIdentity("a.pem")
		keys[id] = ids[id].PublicKey()
	}
	trust := masterless.TrustKeys(keys)
	var nodes []*masterless.Server
	for _, id := range []string{"a", "b", "c"} {
		s, err := masterless.New(id, quiet, masterless.WithIdentity(ids[id]), masterless.WithTrust(trust))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer s.Close()
		nodes = append(nodes, s)
	}
	ctx := context.Background()
	for _, pair := range [][2]*masterless.Server{{nodes[0], nodes[1]}, {nodes[1], nodes[2]}, {nodes[2], nodes[0]}} {
		peer, err := pair[0].Connect(ctx, pair[1].Info())
		fmt.Println(pair[0].ID(), "->", peer, err)
	}

	// A node whose key nobody pinned is refused.
	stranger, _ := masterless.NewIdentity("x")
	x, _ := masterless.New("x", quiet, masterless.WithIdentity(stranger), masterless.WithTrust(trust))
	defer x.Close()
	_, err := x.Connect(ctx, nodes[0].Info())
	fmt.Println("x:", errors.Is(err, masterless.ErrUntrusted))
	// Output:
	// a -> b <nil>
	// b -> c <nil>
	// c -> a <nil>
	// x: true
}

// A cluster CA issues node identities that expire; nodes trust the CA's
// certificate instead of a list of keys.
func ExampleCA() {
	ca, _ := masterless.NewCA("my cluster", 10*365*24*time.Hour)
	a, _ := ca.Issue("a", time.Now().Add(90*24*time.Hour))
	b, _ := ca.Issue("b", time.Now().Add(90*24*time.Hour))
	old, _ := ca.Issue("old", time.Now().Add(-time.Hour)) // already expired
	trust := masterless.TrustCA(ca.Certificate())

	sa, _ := masterless.New("a", quiet, masterless.WithIdentity(a), masterless.WithTrust(trust))
	defer sa.Close()
	sb, _ := masterless.New("b", quiet, masterless.WithIdentity(b), masterless.WithTrust(trust))
	defer sb.Close()
	so, _ := masterless.New("old", quiet, masterless.WithIdentity(old), masterless.WithTrust(trust))
	defer so.Close()

	peer, err := sb.Connect(context.Background(), sa.Info())
	fmt.Println(peer, err)
	_, err = sa.Connect(context.Background(), so.Info())
	fmt.Println("expired:", errors.Is(err, masterless.ErrCertificateExpired))
	// Output:
	// a <nil>
	// expired: true
}

// An identity is written and read as PEM, for instance to a file per node.
func ExampleReadIdentity() {
	id, _ := masterless.NewIdentity("node-1")
	var pemData bytes.Buffer
	_ = id.WritePEM(&pemData) // or id.WriteFile("node-1.pem")
	back, err := masterless.ReadIdentity(&pemData)
	fmt.Println(back.ID(), back.PublicKey().Equal(id.PublicKey()), err)
	// Output: node-1 true <nil>
}
