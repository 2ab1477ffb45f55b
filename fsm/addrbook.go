package fsm

// Where forgotten peers were reached. A peer record is dropped once nothing
// refers to it (maybeForgetPeer), and with it the addresses the node would
// redial it at. A user who keeps that id again later (Keep) expects the node
// to reconnect, as it would have a moment earlier, while the record was
// still there: a record made anew without an address can only wait for the
// peer to dial in, and if the peer no longer keeps the pair nobody dials
// and the kept pair stays apart for good (a black-box audit: Keep(true)
// after the reconnect grace, or after an "unwanted" close and two peer
// timeouts, never reconnected). So the node remembers, for the most recent
// forgotten peers, the address the user dialed, the one the peer
// advertised, and the protocol it spoke, and a record made anew for that id
// starts from them.

// maxAddrBook bounds the forgotten peers whose addresses are remembered;
// past it the oldest is forgotten for good. An entry holds at most two
// addresses of at most wire.MaxInfoLen bytes, so the book holds a few MiB
// at worst (hostile peers advertising 1 KiB addresses) and a few hundred
// KiB for real ones.
const maxAddrBook = 4096

// bookEntry is what is remembered of one forgotten peer.
type bookEntry struct {
	addr, info string
	legacy     bool
	seq        uint64 // which bookOrder entry is current for the id
}

// bookRef is one id in the book's age order.
type bookRef struct {
	id  string
	seq uint64
}

// addrBook remembers the redial addresses of forgotten peers.
type addrBook struct {
	entries map[string]bookEntry
	order   []bookRef // oldest first; entries whose seq moved on are stale
	seq     uint64
}

// remember records where p was reached, as p is forgotten.
func (b *addrBook) remember(p *peer) {
	if p.addr == "" && p.info == "" {
		return
	}
	if b.entries == nil {
		b.entries = make(map[string]bookEntry)
	}
	b.seq++
	b.entries[p.id] = bookEntry{addr: p.addr, info: p.info, legacy: p.legacy, seq: b.seq}
	b.order = append(b.order, bookRef{id: p.id, seq: b.seq})
	for len(b.entries) > maxAddrBook {
		old := b.order[0]
		b.order = b.order[1:]
		if e, ok := b.entries[old.id]; ok && e.seq == old.seq {
			delete(b.entries, old.id)
		}
	}
	if len(b.order) > 2*maxAddrBook { // stale refs of restored ids: compact
		live := b.order[:0]
		for _, r := range b.order {
			if e, ok := b.entries[r.id]; ok && e.seq == r.seq {
				live = append(live, r)
			}
		}
		b.order = live
	}
}

// restore gives a record made anew for a forgotten peer the addresses it
// was reached at, and takes them out of the book (the record holds them
// now).
func (b *addrBook) restore(p *peer) {
	e, ok := b.entries[p.id]
	if !ok {
		return
	}
	delete(b.entries, p.id)
	p.addr, p.info, p.legacy = e.addr, e.info, e.legacy
}
