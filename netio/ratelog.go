package netio

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Rate-limited logging of what peers cause. A flood of bad connections makes
// the same line again and again (issue 11 counted 102,636 WARN lines in
// 20 s); each kind of line may be logged logBurst times per logWindow, and
// the first one logged after a quiet spell says how many were suppressed
// (Close reports the rest). A kind is the message and the sentinel its
// reason wraps, not the reason's text, which names connections and sizes.

const (
	logBurst  = 10
	logWindow = 10 * time.Second
)

// logLimiter counts lines per kind. It is not safe for concurrent use: the
// Runtime calls it under its core lock.
type logLimiter struct {
	burst  int
	window time.Duration
	kinds  map[logKind]*logCount
}

// logKind is a kind of line: a message, and the class of its reason.
type logKind struct {
	msg   string
	class string
}

type logCount struct {
	level      slog.Level
	since      time.Time // start of the current window
	logged     int       // lines logged in it
	suppressed int       // lines dropped since the last one logged
}

func newLogLimiter(burst int, window time.Duration) *logLimiter {
	return &logLimiter{burst: burst, window: window, kinds: make(map[logKind]*logCount)}
}

// allow reports whether a line of kind k may be logged at now, and how many
// lines of that kind were suppressed since the last one logged.
func (l *logLimiter) allow(k logKind, level slog.Level, now time.Time) (bool, int) {
	c := l.kinds[k]
	if c == nil {
		c = &logCount{level: level, since: now}
		l.kinds[k] = c
	}
	if now.Sub(c.since) >= l.window {
		c.since, c.logged = now, 0
	}
	if c.logged >= l.burst {
		c.suppressed++
		return false, 0
	}
	c.logged++
	n := c.suppressed
	c.suppressed = 0
	return true, n
}

// pending is a kind of line with lines suppressed and not yet reported.
type pending struct {
	kind       logKind
	level      slog.Level
	suppressed int
}

// drain returns the kinds with suppressed lines not yet reported, in a
// fixed order, and forgets those counts.
func (l *logLimiter) drain() []pending {
	var out []pending
	for k, c := range l.kinds {
		if c.suppressed > 0 {
			out = append(out, pending{kind: k, level: c.level, suppressed: c.suppressed})
			c.suppressed = 0
		}
	}
	slices.SortFunc(out, func(a, b pending) int {
		return cmp.Or(cmp.Compare(a.kind.msg, b.kind.msg), cmp.Compare(a.kind.class, b.kind.class))
	})
	return out
}

// reasonClasses are the sentinels a peer's doing can be classed by, most
// specific first. A reason that wraps none of them is "other": the kinds of
// line stay few, whatever a peer sends.
var reasonClasses = []error{
	fsm.ErrEvicted, fsm.ErrTooManyHandshakes, fsm.ErrHandshakeTimeout, fsm.ErrPeerTimeout,
	wire.ErrBadMagic, wire.ErrVersionMismatch, wire.ErrFrameTooLarge, wire.ErrMalformedFrame,
	fsm.ErrProtocol, fsm.ErrSelfConnect, fsm.ErrDuplicateID, fsm.ErrStaleIncarnation,
	fsm.ErrDuplicate, fsm.ErrReplaced, fsm.ErrUnwanted, fsm.ErrPeerClosed, fsm.ErrConnectionLost, fsm.ErrClosed,
	ErrUntrusted, ErrCertificateExpired, fsm.ErrIDMismatch, fsm.ErrUnauthenticated,
}

func reasonClass(err error) string {
	if err == nil {
		return "requested"
	}
	for _, s := range reasonClasses {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "other"
}

// logPeer logs a line a peer's doing caused, at most logBurst of its kind
// per logWindow. Called with n.mu held.
func (n *Runtime) logPeer(level slog.Level, msg string, why error, args ...any) {
	if !n.log.Enabled(context.Background(), level) {
		return
	}
	ok, suppressed := n.logs.allow(logKind{msg: msg, class: reasonClass(why)}, level, time.Now())
	if !ok {
		return
	}
	if why != nil {
		args = append(args, "reason", why) // the error itself: handlers may test it with errors.Is
	} else {
		args = append(args, "reason", errText(why))
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	n.log.Log(context.Background(), level, msg, args...)
}

// logging reports whether n's logger takes lines of level: a call site
// whose arguments are not constants tests it first, since they are boxed
// into the call's []any whether or not the line is kept (seven allocations
// of a churn cycle, with a logger that keeps nothing).
func (n *Runtime) logging(level slog.Level) bool {
	return n.log.Enabled(context.Background(), level)
}

// logSuppressed reports the lines suppressed since their kind last logged.
// Called with n.mu held.
func (n *Runtime) logSuppressed() {
	for _, p := range n.logs.drain() {
		n.log.Log(context.Background(), p.level, p.kind.msg+" (similar lines suppressed)", "reason_kind", p.kind.class, "suppressed", p.suppressed)
	}
}
