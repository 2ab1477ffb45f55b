// Command prometheus shows how to export a Server's Stats to Prometheus
// without adding a dependency to your module or to this library's: a handler
// (metrics.go) writes Prometheus's text exposition format from Stats, using
// the standard library only. Two servers connect and exchange a message
// every 100 ms; their metrics are served at /metrics.
//
//	go run ./examples/prometheus                    # serve 127.0.0.1:9464/metrics until interrupted
//	go run ./examples/prometheus -once              # print one scrape after 3 s and exit
//
// Stats can also be published with expvar (package expvarstats), which this
// example does too, at /debug/vars.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // the usual debugging handlers next to /debug/vars
	"os"
	"os/signal"
	"time"

	"github.com/masterless-go/masterless"
	"github.com/masterless-go/masterless/expvarstats"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9464", "where to serve /metrics and /debug/vars")
	once := flag.Bool("once", false, "print one scrape after -wait and exit, instead of serving")
	wait := flag.Duration("wait", 3*time.Second, "with -once: how long the servers run before the scrape")
	flag.Parse()

	a, err := masterless.New("node-a")
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := masterless.New("node-b")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, b.Info()); err != nil {
		log.Fatal(err)
	}
	if err := expvarstats.Publish("masterless_node_a", a); err != nil {
		log.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-t.C:
				a.Send(b.ID(), fmt.Appendf(nil, "tick %d", i))
			case <-stop:
				return
			}
		}
	}()

	if *once {
		time.Sleep(*wait)
		if err := WriteMetrics(os.Stdout, nodeStats{a.ID(), a.Stats()}, nodeStats{b.ID(), b.Stats()}); err != nil {
			log.Fatal(err)
		}
		return
	}
	http.Handle("/metrics", Handler(a, b))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		srv.Close()
	}()
	log.Printf("serving http://%s/metrics and /debug/vars; interrupt to stop", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
