package migrations

// DownNotified reverts notified's migrations above targetVersion and
// returns their versions, for tests.
var DownNotified = down
