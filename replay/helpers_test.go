package replay_test

import (
	"testing"

	"github.com/notified/notified/internal/bridgetest"
)

// testBundle is a test database with the capture trigger, a bridge
// configuration for it, and the replay tests' own helpers.
type testBundle struct{ *bridgetest.Bundle }

func setup(t testing.TB) *testBundle { return &testBundle{bridgetest.Setup(t, bridgetest.Options{})} }
