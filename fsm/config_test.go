package fsm_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
)

// TestConfigNegativeNamesTheField: a negative duration or discovery setting
// is refused with the name of the field; the error used to say only
// "negative duration -1s" or "negative discovery setting" (black-box audit).
func TestConfigNegativeNamesTheField(t *testing.T) {
	for _, c := range []struct {
		field string
		set   func(*fsm.Config)
	}{
		{"HeartbeatInterval", func(c *fsm.Config) { c.HeartbeatInterval = -time.Second }},
		{"PeerTimeout", func(c *fsm.Config) { c.PeerTimeout = -time.Second }},
		{"HandshakeTimeout", func(c *fsm.Config) { c.HandshakeTimeout = -time.Second }},
		{"BackoffMin", func(c *fsm.Config) { c.BackoffMin = -time.Second }},
		{"BackoffMax", func(c *fsm.Config) { c.BackoffMax = -time.Second }},
		{"ReconnectGrace", func(c *fsm.Config) { c.ReconnectGrace = -time.Second }},
		{"DiscoveryDials", func(c *fsm.Config) { c.Discovery, c.DiscoveryDials = true, -1 }},
		{"DiscoveryGap", func(c *fsm.Config) { c.Discovery, c.DiscoveryGap = true, -time.Second }},
		{"GossipInterval", func(c *fsm.Config) { c.Discovery, c.GossipInterval = true, -time.Second }},
		{"MemberTimeout", func(c *fsm.Config) { c.Discovery, c.MemberTimeout = true, -time.Second }},
		{"LeaderDelay", func(c *fsm.Config) { c.Discovery, c.LeaderDelay = true, -time.Second }},
		{"MaxMembers", func(c *fsm.Config) { c.Discovery, c.MaxMembers = true, -1 }},
	} {
		cfg := fsm.Config{ID: "a", Incarnation: 1}
		c.set(&cfg)
		_, err := fsm.New(cfg)
		require.ErrorIs(t, err, fsm.ErrBadConfig, c.field)
		require.Contains(t, err.Error(), c.field, c.field)
	}
}

// TestConfigBackoffMaxFollowsALongerMin: a zero BackoffMax is the default,
// or BackoffMin if that is longer; it used to be the default regardless, and
// a BackoffMin over it was refused as "backoff max 10s below min 20s", a max
// never set (black-box audit).
func TestConfigBackoffMaxFollowsALongerMin(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "a", Incarnation: 1, BackoffMin: 20 * time.Second})
	require.NoError(t, err)
	require.Equal(t, 20*time.Second, n.Config().BackoffMax)

	n, err = fsm.New(fsm.Config{ID: "a", Incarnation: 1, BackoffMin: time.Second})
	require.NoError(t, err)
	require.Equal(t, fsm.DefaultBackoffMax, n.Config().BackoffMax, "a shorter min keeps the default max")

	_, err = fsm.New(fsm.Config{ID: "a", Incarnation: 1, BackoffMin: 2 * time.Second, BackoffMax: time.Second})
	require.ErrorIs(t, err, fsm.ErrBadConfig, "a max set below the min")
	require.Contains(t, err.Error(), "BackoffMax 1s below BackoffMin 2s")
}
