package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
)

// flagRetention is --retention, for every command that keeps or prunes
// history; read it with retention. It is a string, as a duration flag would
// not take "forever".
func flagRetention() cli.Flag {
	return &cli.StringFlag{
		Name: "retention", EnvVars: []string{"NOTIFIED_RETENTION"},
		Value: strconv.Itoa(int(bridge.DefaultRetention/time.Hour)) + "h",
		Usage: "how long to keep history (dispatch records, job outcomes, replays): a duration such as 720h, or forever (0 also means forever)",
	}
}

// retention is the value of --retention as bridge.Config.Retention takes it.
func retention(c *cli.Context) (time.Duration, error) { return parseRetention(c.String("retention")) }

// parseRetention reads a retention: a positive duration, or "forever". 0,
// which meant forever before forever was a word, still does. Both are
// bridge.KeepForever: for bridge.Config a 0 would be its default, 30 days.
func parseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "forever") {
		return bridge.KeepForever, nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("--retention / NOTIFIED_RETENTION %q is not a duration: give one such as 720h (30 days), or forever", s)
	case d < 0:
		return 0, fmt.Errorf("--retention / NOTIFIED_RETENTION %q is negative: give a duration such as 720h (30 days), or forever", s)
	case d == 0:
		return bridge.KeepForever, nil
	}
	return d, nil
}
