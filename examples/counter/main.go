// Command counter is the seed's counter example: two servers in one process
// pass a counter back and forth, each incrementing it, and print its rate.
//
//	go run ./examples/counter -count 100000
//	go run ./examples/counter -duration 5s
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"sync/atomic"
	"time"

	"github.com/masterless-go/masterless"
)

func main() {
	count := flag.Uint64("count", 100000, "stop when the counter reaches this value (0: no limit; with -duration alone, none)")
	duration := flag.Duration("duration", 0, "stop after this long (0: no limit)")
	every := flag.Uint64("every", 0, "print the counter every this many steps (default count/10)")
	flag.Parse()
	countSet := false
	flag.Visit(func(f *flag.Flag) { countSet = countSet || f.Name == "count" })
	if *duration > 0 && !countSet {
		*count = 0 // -duration alone runs for its time, not until the default count
	}
	if *count == 0 && *duration == 0 {
		log.Fatal("give -count or -duration")
	}
	if *every == 0 {
		*every = max(*count/10, 10000)
	}

	start := time.Now()
	done := make(chan uint64, 1)
	// stopping: -duration is over; the message in flight is the last, not
	// answered, so that nothing is in flight when the servers close (a
	// message on its way to a server that closes is handed back as lost).
	var stopping atomic.Bool
	onMessage := func(s *masterless.Server, from string, payload []byte) {
		if len(payload) != 8 {
			log.Printf("unknown packet %q from %s", payload, from)
			return
		}
		total := binary.BigEndian.Uint64(payload)
		if total%*every == 0 {
			el := time.Since(start)
			fmt.Printf("counter at %d (%.0f/s)\n", total, float64(total)/el.Seconds())
		}
		if (*count != 0 && total >= *count) || stopping.Load() {
			select {
			case done <- total:
			default:
			}
			return
		}
		s.Send(from, binary.BigEndian.AppendUint64(payload[:0], total+1))
	}

	left, err := masterless.New("e4663c9c3f9a89112afc48389a951e09",
		masterless.WithEvents(masterless.Events{Message: onMessage}))
	if err != nil {
		log.Fatal(err)
	}
	defer left.Close()
	right, err := masterless.New("b073a8ee09e1daca57e9d54a5efe5684",
		masterless.WithEvents(masterless.Events{
			Message: onMessage,
			Connect: func(s *masterless.Server, id, _ string) {
				start = time.Now()
				s.Send(id, binary.BigEndian.AppendUint64(nil, 0))
			},
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer right.Close()

	if _, err := right.Connect(context.Background(), left.Info()); err != nil {
		log.Fatal(err)
	}
	var timeout <-chan time.Time
	if *duration > 0 {
		timeout = time.After(*duration)
	}
	var total uint64
	select {
	case total = <-done:
	case <-timeout:
		stopping.Store(true)
		select {
		case total = <-done: // the message in flight arrives and is not answered
		case <-time.After(5 * time.Second):
			log.Fatal("the last message never arrived")
		}
	}
	el := time.Since(start)
	fmt.Printf("done: counter at %d in %v (%.0f round trips/s)\n", total, el.Round(time.Millisecond), float64(total)/2/el.Seconds())
	if total == 0 {
		os.Exit(1)
	}
}
