package spec

import (
	"fmt"
	"slices"
	"time"
)

// LostLedger checks the invariant no-lost-while-kept (README, "Exactly once,
// in order, across reconnects"; spec/PROTOCOL.md 4.1 and 5): while both
// processes of a pair live and at least one of them keeps the pair, a node
// hands messages back as lost (an fsm ActLost) only once its peer has stayed
// away longer than the reconnect grace. An end that does not keep the pair
// waits that long too after any session end but a user's Disconnect or Close,
// whichever end keeps the pair: the peer may keep it and come back for the
// messages, which are then resent, not reported lost.
//
// Concretely, a Lost that node N reports for peer P at time t is a violation
// unless one of the reasons the protocol allows holds:
//
//   - the pair is exempt: N or P crashed, restarted or closed (Close, a
//     clean exit), a user's Disconnect named the other, either end speaks
//     masterless 0.4.1 (which resends nothing), or there was an instant since
//     the pair was first kept at which neither end kept it (the leader then
//     ends the session as unwanted). An exemption lasts for the rest of the
//     run: the ledger does not try to tell which later losses it explains;
//   - the pair was never kept (the rule says nothing of it);
//   - N has had no confirmed session with P (fsm.PeerStatus.Confirmed) for at
//     least Grace: since N's last one ended, or since the start of the run
//     if it never had one. A session not yet confirmed does not count: the
//     node counts the peer as away until the other end confirms one.
//
// What "keeps" means is the observer's to say ([LostLedger.Keep]): in the
// simulator, the node's fsm keeps the peer and its user asked it to (SetKeep,
// or a Connect that reached the peer), so a peer kept only by discovery is
// not kept here. The observer must report a user's un-keep, Disconnect, crash
// and Close before the step that carries it out (that step may hand
// messages back at once), and sessions and keeps as they are after each step.
//
// The fourth reason the README names, a message larger than the peer accepts,
// is not modelled: the simulator's nodes share one frame limit. Because the
// timing is read off the sessions each end saw, the check needs no bound on
// how long faults last: a partition longer than the grace may end in Lost,
// one shorter may not. It covers keeper switches (one end keeps, then the
// other, with no instant at which neither does) as they come.
//
// The zero value with Grace set is ready.
type LostLedger struct {
	// Grace is the reconnect grace of every node.
	Grace time.Duration

	pairs     map[[2]string]*lostPair // by unordered pair, the smaller id first
	nodes     map[string]string       // node -> why every pair of it is exempt
	judged    int                     // Lost events of watched, not exempt pairs (each allowed by the grace)
	exercised int                     // sessions ended at an end that held messages and did not keep the pair
}

// lostPair is what the ledger knows of one pair; index 0 is the smaller id.
type lostPair struct {
	exempt  string           // why a Lost is allowed on the pair; "" if none is
	watched bool             // some end has kept the pair
	kept    [2]bool          // each end keeps the pair
	up      [2]bool          // each end has a confirmed session with the other
	lastEnd [2]time.Duration // when each end's last confirmed session with the other ended
}

// pair returns the record of the pair (a, b) and a's index in it.
func (l *LostLedger) pair(a, b string) (*lostPair, int) {
	if l.pairs == nil {
		l.pairs = map[[2]string]*lostPair{}
	}
	k, i := [2]string{a, b}, 0
	if b < a {
		k, i = [2]string{b, a}, 1
	}
	p := l.pairs[k]
	if p == nil {
		p = &lostPair{}
		l.pairs[k] = p
	}
	return p, i
}

// Keep records whether node keeps peer, from now on.
func (l *LostLedger) Keep(node, peer string, keep bool) {
	if node == peer {
		return
	}
	p, i := l.pair(node, peer)
	p.kept[i] = keep
	switch {
	case keep:
		p.watched = true
	case p.watched && !p.kept[1-i] && p.exempt == "":
		p.exempt = fmt.Sprintf("neither %s nor %s kept the pair for a while", node, peer)
	}
}

// Session records whether node has a confirmed session with peer at now.
// queued is how many messages node holds that peer has not acknowledged:
// a session ending while it holds some and does not keep the pair is a case
// the rule is about, counted in [LostLedger.Exercised].
func (l *LostLedger) Session(now time.Duration, node, peer string, up bool, queued int) {
	if node == peer {
		return
	}
	p, i := l.pair(node, peer)
	if p.up[i] && !up {
		p.lastEnd[i] = now
		if queued > 0 && !p.kept[i] && p.watched && l.exemption(node, peer, p) == "" {
			l.exercised++
		}
	}
	p.up[i] = up
}

// Exempt records that from now on a Lost between node and peer is allowed,
// and why (a Disconnect); with peer "", between node and every peer (a
// crash, a restart, a Close, a node speaking 0.4.1).
func (l *LostLedger) Exempt(node, peer, why string) {
	if peer == "" {
		if l.nodes == nil {
			l.nodes = map[string]string{}
		}
		if l.nodes[node] == "" {
			l.nodes[node] = why
		}
		return
	}
	if p, _ := l.pair(node, peer); p.exempt == "" {
		p.exempt = why
	}
}

// exemption returns why a Lost between a and b is allowed whatever the
// timing, or "".
func (l *LostLedger) exemption(a, b string, p *lostPair) string {
	switch {
	case p.exempt != "":
		return p.exempt
	case l.nodes[a] != "":
		return l.nodes[a]
	}
	return l.nodes[b]
}

// Lost checks that node may report k messages to peer lost at now, for why
// (the fsm's reason, for the report), and returns the violation if not.
func (l *LostLedger) Lost(now time.Duration, node, peer string, k int, why error) error {
	p, i := l.pair(node, peer)
	if !p.watched || l.exemption(node, peer, p) != "" {
		return nil
	}
	keeps := func(j int) string {
		if p.kept[j] {
			return "keeps"
		}
		return "does not keep"
	}
	ids := [2]string{node, peer}
	if i == 1 {
		ids = [2]string{peer, node}
	}
	state := fmt.Sprintf("%s %s the pair, %s %s it, both live, neither was told to Disconnect or Close", ids[0], keeps(0), ids[1], keeps(1))
	if p.up[i] {
		return fmt.Errorf("no-lost-while-kept: %s reported %d messages to %s lost at %v (%v) while its session with %s was up, or in the step that ended it (%s)", node, k, peer, now, why, peer, state)
	}
	if away := now - p.lastEnd[i]; away < l.Grace {
		return fmt.Errorf("no-lost-while-kept: %s reported %d messages to %s lost at %v (%v), %v after its last session with %s ended, less than the reconnect grace %v (%s)",
			node, k, peer, now, why, away, peer, l.Grace, state)
	}
	l.judged++
	return nil
}

// Exemptions returns why pairs or nodes are exempt, sorted: empty when the
// rule held every pair to the grace for the whole run.
func (l *LostLedger) Exemptions() []string {
	var out []string
	for _, p := range l.pairs {
		if p.exempt != "" {
			out = append(out, p.exempt)
		}
	}
	for _, why := range l.nodes {
		out = append(out, why)
	}
	slices.Sort(out)
	return out
}

// Judged returns how many Lost events the ledger held to the grace (of
// pairs kept and not exempt), each of which it allowed.
func (l *LostLedger) Judged() int { return l.judged }

// Exercised returns how many sessions of a kept, not exempt pair ended at
// the end that did not keep it while it held messages the peer had not
// acknowledged: each a case where reporting them lost at once would have
// broken the rule.
func (l *LostLedger) Exercised() int { return l.exercised }
