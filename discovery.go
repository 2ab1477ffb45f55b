package masterless

import (
	"fmt"
	"time"

	"github.com/masterless-go/masterless/fsm"
)

// Discovery: a Server started with WithDiscovery learns the other members of
// the mesh from its peers and connects to each of them, so that every node
// needs only one address (a seed) to join. See the README and
// spec/PROTOCOL.md, section 8.

// DiscoveryOptions tune discovery; zero fields take the defaults named.
type DiscoveryOptions struct {
	// MaxDials bounds the discovery dials in flight at once (default 8).
	MaxDials int
	// Gap spaces successive discovery dials: each gap is drawn from
	// [Gap/2, Gap) (default 20 ms).
	Gap time.Duration
	// LeaderDelay is how long the node with the greater id of a newly
	// discovered pair leaves the dialing to the other before it dials too
	// (default: the handshake timeout).
	LeaderDelay time.Duration
	// GossipInterval bounds the period at which the server sends its view
	// of the members to one peer drawn at random: each period is drawn from
	// [GossipInterval/2, GossipInterval), three quarters of it on average
	// (default 2 s).
	GossipInterval time.Duration
	// MemberTimeout: a member not heard of for this long is forgotten and
	// no longer dialed (unless the user keeps it); a member that left is
	// remembered this long (default 30 s).
	MemberTimeout time.Duration
	// MaxMembers bounds the member table (default 4,096).
	MaxMembers int
}

// check refuses a negative field, naming it.
func (o DiscoveryOptions) check() error {
	negative := func(field string, v, def any) error {
		return fmt.Errorf("%w: WithDiscovery: DiscoveryOptions.%s %v: negative (0 keeps the default: %v)", ErrBadConfig, field, v, def)
	}
	switch {
	case o.MaxDials < 0:
		return negative("MaxDials", o.MaxDials, fsm.DefaultDiscoveryDials)
	case o.Gap < 0:
		return negative("Gap", o.Gap, fsm.DefaultDiscoveryGap)
	case o.LeaderDelay < 0:
		return negative("LeaderDelay", o.LeaderDelay, "the handshake timeout")
	case o.GossipInterval < 0:
		return negative("GossipInterval", o.GossipInterval, fsm.DefaultGossipInterval)
	case o.MemberTimeout < 0:
		return negative("MemberTimeout", o.MemberTimeout, fsm.DefaultMemberTimeout)
	case o.MaxMembers < 0:
		return negative("MaxMembers", o.MaxMembers, fsm.DefaultMaxMembers)
	}
	return nil
}

// WithDiscovery turns on discovery (off by default): the server tells the
// peers that have discovery too which members it knows, learns theirs, and
// keeps every live member it learns of, so a server that Connects to one
// member of a mesh ends up connected to all. Of each new pair only the node
// with the smaller id dials (the other only after LeaderDelay without a
// session), and each server paces its discovery dials, so a mesh of N nodes
// forming from one seed opens one TCP connection per pair when nothing
// fails and every follower reaches its new peers within LeaderDelay (a
// machine too loaded for that opens two for some pairs; the handshake
// keeps one, see the README, "No storms"). Close tells the peers the server leaves: they do not redial it. A
// restarted server (a new incarnation) is adopted by every member as soon as
// one of them hears of it. With discovery, the address of every Connect is
// kept until a node answers there even under WithConnectOnce (see
// StopConnecting). Peers without
// discovery (or masterless 0.4.1 nodes) still connect as before; they are
// neither told of members nor advertised. At most one DiscoveryOptions; a
// negative field of it is refused by New with ErrBadConfig.
func WithDiscovery(opts ...DiscoveryOptions) Option {
	return func(s *settings) error {
		if len(opts) > 1 {
			return fmt.Errorf("%w: WithDiscovery takes at most one DiscoveryOptions", ErrBadConfig)
		}
		c := &s.cfg.FSM
		c.Discovery = true
		if len(opts) == 1 {
			o := opts[0]
			if err := o.check(); err != nil {
				return err
			}
			c.DiscoveryDials, c.DiscoveryGap, c.LeaderDelay = o.MaxDials, o.Gap, o.LeaderDelay
			c.GossipInterval, c.MemberTimeout, c.MaxMembers = o.GossipInterval, o.MemberTimeout, o.MaxMembers
		}
		return nil
	}
}

// WithConnectRetry keeps the address of every Connect until a node answers
// there, retrying with the reconnect backoff. It is the default; the option
// remains for code written when it was not, and undoes WithConnectOnce.
func WithConnectRetry() Option {
	return func(s *settings) error { s.cfg.FSM.ConnectOnce = false; return nil }
}

// WithConnectOnce makes a Connect whose attempt fails leave nothing behind,
// as in masterless 0.4.1: the address is not retried, and only a peer that
// answered is kept. By default (without this option) the address of every
// Connect is kept until a node answers there, retried with the reconnect
// backoff (see Server.Connect). WithDiscovery keeps addresses regardless.
func WithConnectOnce() Option {
	return func(s *settings) error { s.cfg.FSM.ConnectOnce = true; return nil }
}

// StopConnecting stops retrying uri, an address kept since a Connect to it
// failed (see Server.Connect). A dial in flight goes on, but the node it
// reaches is not kept unless a Connect call is still waiting for it. An
// address that is not kept is ignored.
func (s *Server) StopConnecting(uri string) error { return s.n.StopConnecting(uri) }

// Member is one member of the mesh as this server knows it (discovery).
type Member struct {
	ID          string
	Addr        string // where its newest known incarnation can be dialed
	Incarnation uint64 // its newest known incarnation
	Connected   bool   // this server has a session with that incarnation
	Kept        bool   // this server keeps it (reconnects on loss)
	Left        bool   // it left gracefully (Close): it is not redialed
}

// Members returns the members this server knows, sorted by id, not counting
// itself; empty without WithDiscovery. A member that left stays listed, with
// Left set, for the member timeout.
func (s *Server) Members() []Member {
	ms := s.n.Members()
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = Member{ID: m.ID, Addr: m.Addr, Incarnation: m.Incarnation, Connected: m.Connected, Kept: m.Kept, Left: m.Left}
	}
	return out
}

// MemberChange says what happened to a member, in the Member event.
type MemberChange uint8

// Member changes.
const (
	// MemberJoined: a member, or a newer incarnation of one, became known.
	MemberJoined MemberChange = iota + 1
	// MemberLeft: the member closed gracefully; it is not redialed. Its
	// record (Left set) is dropped later without another event: MemberLeft
	// is the last event of that incarnation.
	MemberLeft
	// MemberGone: the member was not heard of for the member timeout and is
	// forgotten (it crashed, or is cut off). A member that left is not
	// reported again when its record is dropped.
	MemberGone
)

// String names the change.
func (c MemberChange) String() string {
	switch c {
	case MemberJoined:
		return "joined"
	case MemberLeft:
		return "left"
	case MemberGone:
		return "gone"
	}
	return fmt.Sprintf("MemberChange(%d)", uint8(c))
}

func memberChange(k fsm.ActionKind) MemberChange {
	switch k {
	case fsm.ActMemberUp:
		return MemberJoined
	case fsm.ActMemberLeft:
		return MemberLeft
	}
	return MemberGone
}
