package migrations

// Down reverts notified's migrations above targetVersion, for tests.
var Down = down
