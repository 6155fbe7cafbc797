package main

// These tests hold docker-compose.yml (loaded with compose-go, as `docker
// compose` loads it), the Dockerfile and .dockerignore to the CLI that
// newApp returns and the packages they build, without a Docker engine: a
// renamed command, flag or variable fails here rather than in a container.

import (
	"encoding/json"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/notified/notified/routes"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/example"
	"github.com/notified/notified/internal/web"
)

const repoRoot = "../.."

// setup and the bridge run the CLI commands they are named for, as the CLI
// itself parses them.
func TestComposeRunsCommandsOfTheCLI(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	require.Equal(t, "setup", commandRun(t, p.Services["setup"].Command))
	require.Equal(t, "run", commandRun(t, p.Services["bridge"].Command))
	require.Equal(t, "run", commandRun(t, dockerInstr(t, "bridge", "CMD")), "the image's default command")
}

// The bridge's health check runs the image's binary without a shell (the
// distroless image has none), with `healthcheck`, which reads the bridge's
// address from the same variable as run.
func TestComposeHealthCheckAsksTheBridge(t *testing.T) {
	t.Parallel()
	hc := loadCompose(t).Services["bridge"].HealthCheck
	require.NotNil(t, hc)
	require.GreaterOrEqual(t, len(hc.Test), 3, "health check %q", hc.Test)
	require.Equal(t, "CMD", hc.Test[0])
	require.Equal(t, dockerInstr(t, "bridge", "ENTRYPOINT"), []string(hc.Test[1:2]))
	require.Equal(t, "healthcheck", commandRun(t, hc.Test[2:]))
	f := flagsByEnv("healthcheck")["NOTIFIED_HTTP_ADDR"]
	require.NotNil(t, f, "healthcheck does not read NOTIFIED_HTTP_ADDR")
	require.Equal(t, "http-addr", f.Names()[0])
}

// Every notified variable that setup and the bridge set is read by a flag
// of the command the service runs.
func TestComposeVariablesAreReadByTheirCommand(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	for service, command := range map[string]string{"setup": "setup", "bridge": "run", "webhooks": "work"} {
		read := flagsByEnv(command)
		for name := range p.Services[service].Environment {
			if strings.HasPrefix(name, routes.SecretEnvPrefix) {
				continue // a webhook secret, named by a route, read by the worker
			}
			if strings.HasPrefix(name, "NOTIFIED_") || name == "DATABASE_URL" {
				require.NotNil(t, read[name], "%s sets %s, which no flag of `notified-bridge %s` reads", service, name, command)
			}
		}
	}
}

// setup installs the trigger the bridge listens to: they agree on every
// setting both commands read (database, schema, table, channel, id column).
func TestComposeSetupAndBridgeAgree(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	setup, run := flagsByEnv("setup"), flagsByEnv("run")
	value := func(service, env string, f cli.DocGenerationFlag) string { // the services set only variables
		if v := p.Services[service].Environment[env]; v != nil {
			return *v
		}
		return f.GetValue()
	}
	shared := 0
	for env, f := range setup {
		if run[env] != nil && !strings.HasPrefix(env, "NOTIFIED_LOG_") { // each process may log as it likes
			shared++
			require.Equal(t, value("setup", env, f), value("bridge", env, run[env]), "setup and bridge disagree on %s", env)
		}
	}
	require.GreaterOrEqual(t, shared, 5)
}

// The bridge listens on every interface of the container, on a published
// port, with the web UI's credentials that run requires there.
func TestComposeBridgeServesThePublishedPort(t *testing.T) {
	t.Parallel()
	bridge := loadCompose(t).Services["bridge"]
	addr := serviceEnv(bridge, "NOTIFIED_HTTP_ADDR")
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, "NOTIFIED_HTTP_ADDR %q", addr)
	require.Contains(t, []string{"", "0.0.0.0", "::"}, host, "loopback inside the container is unreachable through the published port")
	require.True(t, slices.ContainsFunc(bridge.Ports, func(pc types.ServicePortConfig) bool { return strconv.Itoa(int(pc.Target)) == port }),
		"port %s is not published", port)
	user, password := serviceEnv(bridge, "NOTIFIED_UI_USER"), serviceEnv(bridge, "NOTIFIED_UI_PASSWORD")
	require.Equal(t, user == "", password == "", "set both NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD, or neither")
	require.NoError(t, web.CheckAddr(addr, user != "", false))
}

// Every process reaches the postgres service's database as its user, and
// the worker works in the bridge's database and schema.
func TestComposeProcessesShareTheDatabase(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	pg := p.Services["postgres"]
	for _, name := range []string{"setup", "bridge", "worker"} {
		u, err := url.Parse(serviceEnv(p.Services[name], "DATABASE_URL"))
		require.NoError(t, err, name)
		require.Equal(t, "postgres", u.Hostname(), "%s: DATABASE_URL does not connect to the postgres service", name)
		require.Equal(t, serviceEnv(pg, "POSTGRES_DB"), strings.TrimPrefix(u.Path, "/"), name)
		require.Equal(t, serviceEnv(pg, "POSTGRES_USER"), u.User.Username(), name)
		pw, _ := u.User.Password()
		require.Equal(t, serviceEnv(pg, "POSTGRES_PASSWORD"), pw, name)
	}
	for _, env := range []string{"DATABASE_URL", "NOTIFIED_SCHEMA"} {
		require.Equal(t, serviceEnv(p.Services["bridge"], env), serviceEnv(p.Services["worker"], env), env)
	}
}

// Postgres creates the events table the bridge reads on first start.
func TestComposePostgresCreatesTheEventsTable(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	pg := p.Services["postgres"]
	i := slices.IndexFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
		return strings.HasPrefix(v.Target, "/docker-entrypoint-initdb.d/")
	})
	require.GreaterOrEqual(t, i, 0, "no init SQL mounted into /docker-entrypoint-initdb.d")
	initSQL, err := os.ReadFile(pg.Volumes[i].Source)
	require.NoError(t, err)
	require.Contains(t, string(initSQL), "CREATE TABLE IF NOT EXISTS "+serviceEnv(p.Services["bridge"], "NOTIFIED_EVENTS_TABLE_NAME")+" (")
}

// setup adds the example worker's routes, so that events committed before
// the worker first starts are routed as it would route them, and a webhook
// route to the receiver, signed with the secret the webhooks service and
// the receiver share.
func TestComposeSetupRoutesAreTheExampleWorkers(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	var want []string
	for _, r := range example.Routes() {
		want = append(want, r.Event+"="+r.Kind)
	}
	var hooks []routes.Route
	for _, spec := range strings.Split(serviceEnv(p.Services["setup"], "NOTIFIED_ROUTES"), ",") {
		r, err := parseRouteSpec(spec)
		require.NoError(t, err, spec)
		require.NoError(t, r.Validate(), spec)
		if r.Webhook != "" {
			hooks = append(hooks, r)
			continue
		}
		require.Contains(t, want, spec)
		want = slices.DeleteFunc(want, func(w string) bool { return w == spec })
	}
	require.Empty(t, want, "example routes setup does not add")
	require.Len(t, hooks, 1)
	u, err := url.Parse(hooks[0].Webhook)
	require.NoError(t, err)
	require.Contains(t, p.Services, u.Hostname(), "the webhook route's host is a service")
	for _, service := range []string{"webhooks", u.Hostname()} {
		require.NotEmpty(t, serviceEnv(p.Services[service], hooks[0].SecretEnv), "%s has the secret", service)
	}
	require.Equal(t, serviceEnv(p.Services["webhooks"], hooks[0].SecretEnv), serviceEnv(p.Services[u.Hostname()], hooks[0].SecretEnv))
	require.Equal(t, "work", commandRun(t, p.Services["webhooks"].Command))
	require.Equal(t, "true", serviceEnv(p.Services["webhooks"], "NOTIFIED_WEBHOOK_ALLOW_PRIVATE"), "the receiver has a private address")
}

// The worker's variables are ones cmd/example-worker reads (its -h output
// names each as $NAME), and those its handlers need to reach the mail and
// webhook sinks are set.
func TestComposeWorkerVariablesAreReadByExampleWorker(t *testing.T) {
	t.Parallel()
	worker := loadCompose(t).Services["worker"]
	help, err := exec.Command("go", "run", "../example-worker", "-h").CombinedOutput() // the flag package exits 0 after -h
	require.NoError(t, err, "example-worker -h: %s", help)
	for name := range worker.Environment {
		require.Contains(t, string(help), "$"+name, "the worker sets %s, which example-worker does not read", name)
	}
	for _, name := range []string{"DATABASE_URL", "EXAMPLE_SMTP_ADDR", "EXAMPLE_WEBHOOK_URL"} {
		require.NotEmpty(t, serviceEnv(worker, name), name)
	}
}

// Services start once what they need is ready: setup when postgres answers,
// the bridge and the worker once setup has succeeded.
func TestComposeStartsInOrder(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	for _, dep := range []struct{ service, on, condition string }{
		{"setup", "postgres", types.ServiceConditionHealthy},
		{"bridge", "setup", types.ServiceConditionCompletedSuccessfully},
		{"worker", "setup", types.ServiceConditionCompletedSuccessfully},
		{"worker", "mailpit", types.ServiceConditionHealthy},
		{"worker", "httpbin", types.ServiceConditionStarted},
	} {
		require.Equal(t, dep.condition, p.Services[dep.service].DependsOn[dep.on].Condition, "%s depends on %s", dep.service, dep.on)
	}
	require.Contains(t, p.Services["postgres"].HealthCheck.Test, "pg_isready", "postgres is healthy when it accepts connections")
}

// setup runs once; the bridge and the worker are restarted, and given time
// to finish their work on SIGTERM.
func TestComposeServicesRestartAndStopAsTheyShould(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	require.Contains(t, []string{"", types.RestartPolicyNo}, p.Services["setup"].Restart)
	for _, name := range []string{"bridge", "worker"} {
		require.Contains(t, []string{types.RestartPolicyUnlessStopped, types.RestartPolicyAlways}, p.Services[name].Restart, name)
		require.NotNil(t, p.Services[name].StopGracePeriod, name)
	}
}

// The public images are pinned to a version: the stack does not change
// under its users.
func TestComposeImagesArePinned(t *testing.T) {
	t.Parallel()
	for name, svc := range loadCompose(t).Services {
		if svc.Build == nil {
			require.Regexp(t, `:v?\d[\w.-]*$`, svc.Image, name)
		}
	}
}

// Variables set in the shell or .env reach the services that use them.
func TestComposeInterpolatesEnvironment(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, "POSTGRES_PASSWORD=pw-from-env", "NOTIFIED_UI_USER=ops", "NOTIFIED_UI_PASSWORD=s3cret")
	bridge := p.Services["bridge"]
	require.Equal(t, "ops", serviceEnv(bridge, "NOTIFIED_UI_USER"))
	require.Equal(t, "s3cret", serviceEnv(bridge, "NOTIFIED_UI_PASSWORD"))
	require.Contains(t, serviceEnv(bridge, "DATABASE_URL"), ":pw-from-env@")
	require.Equal(t, "pw-from-env", serviceEnv(p.Services["postgres"], "POSTGRES_PASSWORD"))
}

// Each service built from the Dockerfile runs, as its image's entrypoint, a
// static binary of the package it needs: copied from the build stage,
// where it is built with CGO_ENABLED=0, as distroless/static has no libc.
func TestDockerfileBuildsTheBinariesComposeRuns(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	for service, pkg := range map[string]string{"setup": "notified-bridge", "bridge": "notified-bridge", "worker": "example-worker"} {
		b := p.Services[service].Build
		require.NotNil(t, b, service)
		require.Equal(t, filepath.Join(p.WorkingDir, "Dockerfile"), filepath.Join(b.Context, b.Dockerfile), service)
		entry := dockerInstr(t, b.Target, "ENTRYPOINT")
		require.Len(t, entry, 1, "%s: ENTRYPOINT is the binary alone", service)
		_, stages := dockerStages(t)
		copied := regexp.MustCompile(`(?m)^COPY --from=build (\S+) ` + regexp.QuoteMeta(entry[0]) + `$`).FindStringSubmatch(stages[b.Target])
		require.NotNil(t, copied, "%s: no COPY --from=build puts %s in stage %s", service, entry[0], b.Target)
		built := regexp.MustCompile(`CGO_ENABLED=0 go build [^&;]*-o ` + regexp.QuoteMeta(copied[1]) + ` \./cmd/` + pkg + `\b`)
		require.True(t, built.MatchString(stages["build"]), "%s: the build stage does not build %s from ./cmd/%s with CGO_ENABLED=0", service, copied[1], pkg)
	}
}

// The images run as a user other than root.
func TestDockerImagesRunAsNonRoot(t *testing.T) {
	t.Parallel()
	_, stages := dockerStages(t)
	for _, target := range []string{"bridge", "worker"} {
		user := regexp.MustCompile(`(?m)^USER (\w+)`).FindStringSubmatch(stages[target])
		require.NotNil(t, user, target)
		require.NotContains(t, []string{"root", "0"}, user[1], target)
	}
}

// `docker build .` without a target builds the bridge: it is the last stage.
func TestDockerfileDefaultTargetIsTheBridge(t *testing.T) {
	t.Parallel()
	names, _ := dockerStages(t)
	require.Equal(t, "bridge", names[len(names)-1])
}

// .dockerignore, read as Docker reads it, keeps every file the build reads:
// go.mod, go.sum and the Go and embedded files of the packages built.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	require.NoError(t, err)
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)
	const module = "github.com/notified/notified" // the other modules' files come from go mod download
	out, err := exec.Command("go", "list", "-deps", "-f",
		`{{if and .Module .Module.Main}}{{$p := .ImportPath}}{{range .GoFiles}}{{$p}}/{{.}} {{end}}{{range .EmbedFiles}}{{$p}}/{{.}} {{end}}{{end}}`,
		module+"/cmd/notified-bridge", module+"/cmd/example-worker").Output()
	require.NoError(t, err)
	inputs := []string{"go.mod", "go.sum"}
	for _, file := range strings.Fields(string(out)) {
		inputs = append(inputs, strings.TrimPrefix(file, module+"/"))
	}
	require.Contains(t, inputs, "migrations/001_notified.up.sql", "embedded files are build inputs")
	for _, file := range inputs {
		ignored, err := pm.MatchesOrParentMatches(file)
		require.NoError(t, err)
		require.False(t, ignored, ".dockerignore excludes %s, which the images are built from", file)
	}
}

// loadCompose loads docker-compose.yml with env (NAME=value) as the only
// variables it interpolates, not the test's environment.
func loadCompose(t *testing.T, env ...string) *types.Project {
	t.Helper()
	opts, err := composecli.NewProjectOptions([]string{filepath.Join(repoRoot, "docker-compose.yml")},
		composecli.WithWorkingDirectory(repoRoot), composecli.WithEnv(env), composecli.WithInterpolation(true))
	require.NoError(t, err)
	p, err := opts.LoadProject(t.Context())
	require.NoError(t, err)
	for _, name := range []string{"postgres", "setup", "bridge", "worker", "mailpit", "httpbin"} {
		require.Contains(t, p.Services, name)
	}
	return p
}

func serviceEnv(svc types.ServiceConfig, name string) string {
	if v := svc.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// commandRun is the command notified-bridge runs for args, as the CLI
// parses them; nothing runs, and nothing checks the test's environment.
func commandRun(t *testing.T, args []string) string {
	t.Helper()
	app := newApp()
	app.Writer, app.ErrWriter, app.Before = io.Discard, io.Discard, nil
	ran := ""
	var replace func([]*cli.Command)
	replace = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.Before, c.Action = nil, func(c *cli.Context) error { ran = commandName(c); return nil }
			replace(c.Subcommands)
		}
	}
	replace(app.Commands)
	require.NoError(t, app.Run(append([]string{app.Name}, args...)), "notified-bridge %q", args)
	return ran
}

// flagsByEnv maps the environment variables `notified-bridge command` reads
// to the flags that read them, the global ones included.
func flagsByEnv(command string) map[string]cli.DocGenerationFlag {
	app := newApp()
	out := map[string]cli.DocGenerationFlag{}
	for _, f := range append(app.Flags, app.Command(command).Flags...) {
		if d, ok := f.(cli.DocGenerationFlag); ok {
			for _, env := range d.GetEnvVars() {
				out[env] = d
			}
		}
	}
	return out
}

// dockerStages returns the names of the Dockerfile's stages, in order, and
// each one's instructions, continuation lines joined.
func dockerStages(t *testing.T) (names []string, stages map[string]string) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	require.NoError(t, err)
	stages = map[string]string{}
	for _, stage := range regexp.MustCompile(`(?m)^FROM `).Split(strings.ReplaceAll(string(text), "\\\n", " "), -1)[1:] {
		from, body, _ := strings.Cut(stage, "\n")
		name := from[strings.LastIndex(from, " ")+1:] // FROM image AS name
		names, stages[name] = append(names, name), body
	}
	return names, stages
}

// dockerInstr is the exec-form arguments of a stage's ENTRYPOINT or CMD.
func dockerInstr(t *testing.T, stage, instr string) []string {
	t.Helper()
	_, stages := dockerStages(t)
	var args []string
	m := regexp.MustCompile(`(?m)^` + instr + ` (\[.*\])$`).FindStringSubmatch(stages[stage])
	require.NotNil(t, m, "stage %s has no %s in exec form", stage, instr)
	require.NoError(t, json.Unmarshal([]byte(m[1]), &args))
	return args
}
