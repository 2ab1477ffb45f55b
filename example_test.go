package masterless_test

import (
	"context"
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
