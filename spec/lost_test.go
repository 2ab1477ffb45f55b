package spec_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/spec"
)

var errGone = errors.New("gone")

// keptPair is a ledger where b keeps the pair (a, b), a does not, and a's
// confirmed session with b ended at 10s.
func keptPair() *spec.LostLedger {
	l := &spec.LostLedger{Grace: 5 * time.Second}
	l.Keep("b", "a", true)
	l.Session(time.Second, "a", "b", true, 0)
	l.Session(time.Second, "b", "a", true, 0)
	l.Session(10*time.Second, "a", "b", false, 3)
	return l
}

func TestLostLedgerHoldsToTheGrace(t *testing.T) {
	l := keptPair()
	require.Equal(t, 1, l.Exercised(), "a session ended at the end that does not keep the pair, with messages")
	err := l.Lost(12*time.Second, "a", "b", 3, errGone)
	require.ErrorContains(t, err, "no-lost-while-kept: a reported 3 messages to b lost at 12s (gone), 2s after its last session with b ended, less than the reconnect grace 5s")
	require.NoError(t, l.Lost(15*time.Second, "a", "b", 3, errGone), "the peer stayed away for the grace")
	require.Equal(t, 1, l.Judged())
	require.Empty(t, l.Exemptions())
}

func TestLostLedgerSessionUp(t *testing.T) {
	l := keptPair()
	err := l.Lost(time.Minute, "b", "a", 1, errGone) // b's session never ended
	require.ErrorContains(t, err, "while its session with a was up")
	// A node that never had a session counts from the start of the run.
	l.Keep("c", "b", true)
	require.ErrorContains(t, l.Lost(time.Second, "b", "c", 1, errGone), "no-lost-while-kept")
	require.NoError(t, l.Lost(5*time.Second, "b", "c", 1, errGone))
}

func TestLostLedgerExemptions(t *testing.T) {
	for name, exempt := range map[string]func(*spec.LostLedger){
		"disconnect": func(l *spec.LostLedger) { l.Exempt("b", "a", "b disconnected a") },
		"crash":      func(l *spec.LostLedger) { l.Exempt("b", "", "b crashed") },
		"neither":    func(l *spec.LostLedger) { l.Keep("b", "a", false) },
	} {
		t.Run(name, func(t *testing.T) {
			l := keptPair()
			exempt(l)
			require.NoError(t, l.Lost(11*time.Second, "a", "b", 3, errGone))
			require.NotEmpty(t, l.Exemptions())
			require.Zero(t, l.Judged())
		})
	}
	// A keeper switch with no instant at which neither keeps is no exemption.
	l := keptPair()
	l.Keep("a", "b", true)
	l.Keep("b", "a", false)
	require.Empty(t, l.Exemptions())
	require.Error(t, l.Lost(11*time.Second, "a", "b", 3, errGone))
	// A pair never kept is not the rule's.
	require.NoError(t, (&spec.LostLedger{Grace: time.Second}).Lost(0, "x", "y", 1, errGone))
}
