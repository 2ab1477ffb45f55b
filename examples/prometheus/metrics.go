package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/masterless-go/masterless"
)

// Handler serves the Stats of every server in servers in Prometheus's text
// exposition format (version 0.0.4), read afresh at every scrape. It needs
// nothing beyond the standard library: Prometheus scrapes it like any
// exporter. Each series carries the server's id as the label "node".
func Handler(servers ...*masterless.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		stats := make([]nodeStats, len(servers))
		for i, s := range servers {
			stats[i] = nodeStats{id: s.ID(), st: s.Stats()}
		}
		_ = WriteMetrics(w, stats...)
	})
}

type nodeStats struct {
	id string
	st masterless.Stats
}

// metric is one metric family: its name, type and help, and its samples.
type metric struct {
	name, typ, help string
	samples         []sample
}

type sample struct {
	labels [][2]string
	value  float64
}

// WriteMetrics writes the families for the given servers' Stats.
func WriteMetrics(w io.Writer, nodes ...nodeStats) error {
	fams := families(nodes)
	bw := bufio.NewWriter(w)
	for _, f := range fams {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, s := range f.samples {
			bw.WriteString(f.name)
			if len(s.labels) > 0 {
				bw.WriteByte('{')
				for i, l := range s.labels {
					if i > 0 {
						bw.WriteByte(',')
					}
					bw.WriteString(l[0] + `="` + escape(l[1]) + `"`)
				}
				bw.WriteByte('}')
			}
			bw.WriteString(" " + strconv.FormatFloat(s.value, 'g', -1, 64) + "\n")
		}
	}
	return bw.Flush()
}

// escape escapes a label value as the text format wants: UTF-8 with
// backslash, double quote and line feed escaped. A peer id is any bytes
// the peer chose (without identities, any connecting node names itself),
// so bytes that are not UTF-8 and other control characters become U+FFFD:
// one such id must not make every scrape of the node fail.
func escape(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	v = strings.Map(func(r rune) rune {
		if r != '\n' && (r < 0x20 || r == 0x7f) {
			return '\uFFFD'
		}
		return r
	}, v)
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

func families(nodes []nodeStats) []*metric {
	var out []*metric
	fam := func(name, typ, help string) *metric {
		m := &metric{name: "masterless_" + name, typ: typ, help: help}
		out = append(out, m)
		return m
	}
	add := func(m *metric, v float64, labels ...string) {
		s := sample{value: v}
		for i := 0; i+1 < len(labels); i += 2 {
			s.labels = append(s.labels, [2]string{labels[i], labels[i+1]})
		}
		m.samples = append(m.samples, s)
	}
	// byKey adds one sample per key of m, in key order.
	byKey := func(m *metric, node, label string, counts map[string]uint64) {
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			add(m, float64(counts[k]), "node", node, label, k)
		}
	}

	peers := fam("peers", "gauge", "Peers the node knows, by state.")
	handshaking := fam("handshaking", "gauge", "Connections whose handshake is under way.")
	retrying := fam("connect_retrying_addresses", "gauge", "Addresses a failed Connect left being retried.")
	handshakes := fam("handshakes_total", "counter", "Sessions established.")
	failed := fam("handshakes_failed_total", "counter", "Connections closed before they became a session.")
	dups := fam("duplicates_refused_total", "counter", "Connections refused because they duplicated a session or could not be one, by reason.")
	closed := fam("closed_total", "counter", "Connections this node closed, by reason.")
	peerClosed := fam("peer_closed_total", "counter", "Connections a peer closed with a reason, by reason.")
	lost := fam("lost_total", "counter", "Connections that ended without a reason from either end.")
	protocol := fam("protocol_errors_total", "counter", "Connections closed because the peer broke the protocol.")
	msgs := fam("messages_total", "counter", "Messages accepted into the delivery queue (in; the callbacks may not have run yet) and sent (out).")
	bytes := fam("payload_bytes_total", "counter", "Payload bytes accepted into the delivery queue (in) and sent (out).")
	wire := fam("wire_bytes_total", "counter", "Bytes read (in) and written (out) on every socket.")

	pConnected := fam("peer_connected", "gauge", "1 while the peer has a session.")
	pQueued := fam("peer_queued_messages", "gauge", "Messages waiting for the peer (not yet acknowledged).")
	pQueuedBytes := fam("peer_queued_bytes", "gauge", "Payload bytes of the messages waiting for the peer.")
	pAge := fam("peer_session_age_seconds", "gauge", "How long the current session has lasted.")
	pReconnects := fam("peer_reconnects_total", "counter", "Sessions with the peer after the first.")
	pMsgs := fam("peer_messages_total", "counter", "Messages from (in) and to (out) the peer.")
	pBytes := fam("peer_payload_bytes_total", "counter", "Payload bytes from (in) and to (out) the peer.")
	pRTT := fam("peer_rtt_seconds", "gauge", "Smoothed round-trip time measured by the heartbeat (absent before the first sample).")

	for _, n := range nodes {
		st, id := n.st, n.id
		byState := map[string]uint64{"connected": 0, "connecting": 0, "reconnecting": 0, "unreachable": 0, "idle": 0}
		for _, p := range st.Peers {
			byState[p.State]++
		}
		byKey(peers, id, "state", byState)
		add(handshaking, float64(st.Handshaking), "node", id)
		add(retrying, float64(len(st.Connecting)), "node", id)
		add(handshakes, float64(st.Handshakes), "node", id)
		add(failed, float64(st.HandshakesFailed), "node", id)
		byKey(dups, id, "reason", st.Duplicates)
		byKey(closed, id, "reason", st.Closed)
		byKey(peerClosed, id, "reason", st.PeerClosed)
		add(lost, float64(st.Lost), "node", id)
		add(protocol, float64(st.ProtocolErrors), "node", id)
		add(msgs, float64(st.MessagesIn), "node", id, "direction", "in")
		add(msgs, float64(st.MessagesOut), "node", id, "direction", "out")
		add(bytes, float64(st.BytesIn), "node", id, "direction", "in")
		add(bytes, float64(st.BytesOut), "node", id, "direction", "out")
		add(wire, float64(st.WireIn), "node", id, "direction", "in")
		add(wire, float64(st.WireOut), "node", id, "direction", "out")
		for _, p := range st.Peers {
			connected := 0.0
			if p.State == "connected" {
				connected = 1
			}
			add(pConnected, connected, "node", id, "peer", p.ID)
			add(pQueued, float64(p.Queued), "node", id, "peer", p.ID)
			add(pQueuedBytes, float64(p.QueuedBytes), "node", id, "peer", p.ID)
			add(pAge, p.SessionAge.Seconds(), "node", id, "peer", p.ID)
			add(pReconnects, float64(p.Reconnects), "node", id, "peer", p.ID)
			add(pMsgs, float64(p.MessagesIn), "node", id, "peer", p.ID, "direction", "in")
			add(pMsgs, float64(p.MessagesOut), "node", id, "peer", p.ID, "direction", "out")
			add(pBytes, float64(p.BytesIn), "node", id, "peer", p.ID, "direction", "in")
			add(pBytes, float64(p.BytesOut), "node", id, "peer", p.ID, "direction", "out")
			if p.SmoothedRTT > 0 {
				add(pRTT, p.SmoothedRTT.Seconds(), "node", id, "peer", p.ID)
			}
		}
	}
	return out
}
