// Package recent keeps the connections a node wrote on lately, so that
// finding one by id costs no map lookup.
//
// Why: a stream writes on one connection over and over, and a SendMany on
// the same few, each write naming its connection by id; the map lookups
// for them were a visible share of a fan-out's CPU (PERFORMANCE.md, "Lookups
// kept"). The connection layer (package link) and the adapter (package
// netio) each find their own record of a connection by the same ids, so
// both keep one of these.
package recent

import "github.com/masterless-go/masterless/fsm"

// Slots is the number of slots: a SendMany writes on up to that many
// connections, each in its own slot (their ids are consecutive when they
// opened one after the other).
const Slots = 64

// Conns holds up to Slots connections, each in the slot of its id. The
// zero value is empty and ready. It is not safe for concurrent use.
type Conns[C any] struct {
	slots [Slots]slot[C]
}

type slot[C any] struct {
	id fsm.ConnID
	c  C
}

// Get returns connection id if its slot holds it, else the zero C: the
// owner then looks it up itself and Puts what it found.
func (r *Conns[C]) Get(id fsm.ConnID) C {
	if s := &r.slots[id%Slots]; s.id == id {
		return s.c
	}
	var zero C
	return zero
}

// Put keeps connection c, whose id is id, in the slot of its id.
func (r *Conns[C]) Put(id fsm.ConnID, c C) { r.slots[id%Slots] = slot[C]{id: id, c: c} }

// Forget empties the slot of connection id if it holds it: call it when
// the owner lets the connection go, before another may take its id's slot.
func (r *Conns[C]) Forget(id fsm.ConnID) {
	if s := &r.slots[id%Slots]; s.id == id {
		*s = slot[C]{}
	}
}
