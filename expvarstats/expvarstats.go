// Package expvarstats publishes a masterless Server's Stats with package
// expvar, on request. It is a package of its own because importing expvar
// has effects on the whole program (it registers /debug/vars on
// http.DefaultServeMux and publishes "cmdline" and "memstats"): a program
// that uses masterless without this package gets none of them.
package expvarstats

import (
	"errors"
	"expvar"
	"fmt"
	"sync"
	"time"

	"github.com/masterless-go/masterless"
)

// ErrNameTaken is returned by Publish for a name already published (or empty).
var ErrNameTaken = errors.New("expvarstats: the expvar name is empty or already published")

// ErrNilServer is returned by Publish for a nil server: reading the variable
// would fail, and with it every request for expvar's page, for the life of
// the process.
var ErrNilServer = errors.New("expvarstats: nil server")

// mu makes Publish's check and publish one step: expvar.Publish panics on a
// name in use.
var mu sync.Mutex

// Publish publishes s's Stats under name with package expvar, so that a
// program serving expvar's handler (by default at /debug/vars on
// http.DefaultServeMux) shows them as JSON (Stats), read afresh at every
// request. It fails with an error wrapping ErrNameTaken if name is empty or
// already published, and with ErrNilServer if s is nil; either way nothing
// is published.
//
// expvar cannot withdraw a variable: the name stays taken, and the server
// reachable, for the life of the process; after Close it shows the final
// counts. Publish long-lived servers, under names of their own.
func Publish(name string, s *masterless.Server) error {
	if s == nil {
		return fmt.Errorf("%w: publishing %q", ErrNilServer, name)
	}
	mu.Lock()
	defer mu.Unlock()
	if name == "" || expvar.Get(name) != nil {
		return fmt.Errorf("%w: %q", ErrNameTaken, name)
	}
	expvar.Publish(name, expvar.Func(func() any { return JSON(s.Stats()) }))
	return nil
}

// Stats is masterless.Stats in a form encoding/json renders usefully:
// durations in seconds, addresses and errors as text.
type Stats struct {
	Peers            []PeerStats       `json:"peers"`
	Handshaking      int               `json:"handshaking"`
	Connecting       []string          `json:"connecting"` // addresses a failed Connect left being retried
	Handshakes       uint64            `json:"handshakes"`
	HandshakesFailed uint64            `json:"handshakes_failed"`
	Duplicates       map[string]uint64 `json:"duplicates"`
	Closed           map[string]uint64 `json:"closed"`
	PeerClosed       map[string]uint64 `json:"peer_closed"`
	Lost             uint64            `json:"lost"`
	ProtocolErrors   uint64            `json:"protocol_errors"`
	PauseGraces      uint64            `json:"pause_graces"`
	MessagesIn       uint64            `json:"messages_in"`
	MessagesOut      uint64            `json:"messages_out"`
	BytesIn          uint64            `json:"bytes_in"`
	BytesOut         uint64            `json:"bytes_out"`
	WireIn           uint64            `json:"wire_in"`
	WireOut          uint64            `json:"wire_out"`
}

// PeerStats is masterless.PeerStats as Stats shows it.
type PeerStats struct {
	ID                string  `json:"id"`
	State             string  `json:"state"`
	Kept              bool    `json:"kept"`
	Connected         bool    `json:"connected"`
	Incarnation       uint64  `json:"incarnation"`
	Queued            int     `json:"queued"`
	QueuedBytes       int     `json:"queued_bytes"`
	SessionAgeSeconds float64 `json:"session_age_seconds"`
	Reconnects        uint64  `json:"reconnects"`
	MessagesIn        uint64  `json:"messages_in"`
	MessagesOut       uint64  `json:"messages_out"`
	BytesIn           uint64  `json:"bytes_in"`
	BytesOut          uint64  `json:"bytes_out"`
	WireIn            uint64  `json:"wire_in"`
	WireOut           uint64  `json:"wire_out"`
	RTTSeconds        float64 `json:"rtt_seconds"`
	SmoothedRTTSecs   float64 `json:"smoothed_rtt_seconds"`
	WindowBytes       int     `json:"window_bytes"`
	LastEnd           string  `json:"last_end,omitempty"`
	LastEndTime       string  `json:"last_end_time,omitempty"` // RFC 3339
	LocalAddr         string  `json:"local_addr,omitempty"`
	RemoteAddr        string  `json:"remote_addr,omitempty"`
}

// JSON returns st in the form Publish shows.
func JSON(st masterless.Stats) Stats {
	j := Stats{
		Peers: make([]PeerStats, len(st.Peers)), Handshaking: st.Handshaking, Connecting: append([]string{}, st.Connecting...), // [] rather than null when none
		Handshakes: st.Handshakes, HandshakesFailed: st.HandshakesFailed,
		Duplicates: st.Duplicates, Closed: st.Closed, PeerClosed: st.PeerClosed,
		Lost: st.Lost, ProtocolErrors: st.ProtocolErrors, PauseGraces: st.PauseGraces,
		MessagesIn: st.MessagesIn, MessagesOut: st.MessagesOut, BytesIn: st.BytesIn, BytesOut: st.BytesOut,
		WireIn: st.WireIn, WireOut: st.WireOut,
	}
	for i, p := range st.Peers {
		pj := PeerStats{
			ID: p.ID, State: p.State, Kept: p.Kept, Connected: p.Connected, Incarnation: p.Incarnation,
			Queued: p.Queued, QueuedBytes: p.QueuedBytes, SessionAgeSeconds: p.SessionAge.Seconds(),
			Reconnects: p.Reconnects, MessagesIn: p.MessagesIn, MessagesOut: p.MessagesOut,
			BytesIn: p.BytesIn, BytesOut: p.BytesOut, WireIn: p.WireIn, WireOut: p.WireOut,
			RTTSeconds: p.RTT.Seconds(), SmoothedRTTSecs: p.SmoothedRTT.Seconds(), WindowBytes: p.Window,
		}
		if p.LastEnd != nil {
			pj.LastEnd = p.LastEnd.Error()
			pj.LastEndTime = p.LastEndTime.UTC().Format(time.RFC3339Nano)
		}
		if p.LocalAddr != nil {
			pj.LocalAddr, pj.RemoteAddr = p.LocalAddr.String(), p.RemoteAddr.String()
		}
		j.Peers[i] = pj
	}
	return j
}
