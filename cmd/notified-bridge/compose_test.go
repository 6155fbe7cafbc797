package main

// The tests in this file keep docker-compose.yml and the Dockerfile at the
// root of the repository in step with the CLI they deploy. No Docker engine
// is needed: the compose file is loaded with compose-go, as `docker compose`
// loads it, and checked against the urfave/cli definition that newApp
// returns, so that renaming a command, a flag or an environment variable
// fails here rather than in a container.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/example"
	"github.com/notified/notified/internal/web"
)

const (
	composeRepoRoot = "../.."
	composePath     = composeRepoRoot + "/docker-compose.yml"
)

// The Dockerfile's targets, and the package each one's binary is built from.
const (
	bridgeTarget = "bridge"
	workerTarget = "worker"
)

var targetPackages = map[string]string{
	bridgeTarget: "./cmd/notified-bridge",
	workerTarget: "./cmd/example-worker",
}

func TestComposeConsistentWithCLI(t *testing.T) {
	t.Parallel()
	d := loadDeployment(t, nil)
	require.Empty(t, d.check(), "docker-compose.yml or Dockerfile disagrees with the CLI")
}

// With the variables the file interpolates set, as a user would set them in
// the shell or in .env, the project still holds together and the values
// reach the services.
func TestComposeInterpolatesEnvironment(t *testing.T) {
	t.Parallel()
	d := loadDeployment(t, map[string]string{
		"POSTGRES_PASSWORD":    "pw-from-env",
		"NOTIFIED_UI_USER":     "ops",
		"NOTIFIED_UI_PASSWORD": "s3cret",
	})
	require.Empty(t, d.check())
	bridge := d.project.Services["bridge"]
	require.Equal(t, "ops", serviceEnv(bridge, "NOTIFIED_UI_USER"))
	require.Equal(t, "s3cret", serviceEnv(bridge, "NOTIFIED_UI_PASSWORD"))
	require.Contains(t, serviceEnv(bridge, "DATABASE_URL"), ":pw-from-env@")
	require.Equal(t, "pw-from-env", serviceEnv(d.project.Services["postgres"], "POSTGRES_PASSWORD"))
}

// The worker service's variables are ones cmd/example-worker reads: its -h
// output names each as $NAME.
func TestComposeWorkerEnvReadByExampleWorker(t *testing.T) {
	t.Parallel()
	d := loadDeployment(t, nil)
	help := exampleWorkerHelp(t)
	require.Empty(t, checkWorker(d.project, help), "the worker service disagrees with `example-worker -h`:\n%s", help)
}

// The checker is only worth something if it fails: each case breaks one
// thing in a copy of the loaded project, the CLI model or the Dockerfile,
// and requires the checker to report it.
func TestComposeCheckerCatchesMistakes(t *testing.T) {
	t.Parallel()
	base := loadDeployment(t, nil)
	require.Empty(t, base.check())

	editService := func(t *testing.T, d *deployment, name string, edit func(*types.ServiceConfig)) {
		t.Helper()
		p, err := d.project.WithServicesTransform(func(n string, s types.ServiceConfig) (types.ServiceConfig, error) {
			if n == name {
				edit(&s)
			}
			return s, nil
		})
		require.NoError(t, err)
		d.project = p
	}
	setEnv := func(name, value string) func(*types.ServiceConfig) {
		return func(s *types.ServiceConfig) { s.Environment[name] = &value }
	}
	renameEnv := func(from, to string) func(*types.ServiceConfig) {
		return func(s *types.ServiceConfig) {
			s.Environment[to] = s.Environment[from]
			delete(s.Environment, from)
		}
	}

	tests := []struct {
		name   string
		mutate func(t *testing.T, d *deployment)
		want   string
	}{
		{"renamed flag in the bridge command", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", func(s *types.ServiceConfig) { s.Command = types.ShellCommand{"run", "--http-adress", ":8080"} })
		}, `flag --http-adress is not a flag of "run"`},
		{"renamed flag in the setup command", func(t *testing.T, d *deployment) {
			editService(t, d, "setup", func(s *types.ServiceConfig) { s.Command = types.ShellCommand{"setup", "--routes=a=b"} })
		}, `flag --routes is not a flag of "setup"`},
		{"command flag before the command", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", func(s *types.ServiceConfig) { s.Command = types.ShellCommand{"--table", "events", "run"} })
		}, "flag --table is not a flag of notified-bridge"},
		{"unknown command", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", func(s *types.ServiceConfig) { s.Command = types.ShellCommand{"serve"} })
		}, `no command "serve"`},
		{"env var renamed in the CLI", func(t *testing.T, d *deployment) {
			d.cli.command("run").flag("http-addr").envVars = []string{"NOTIFIED_LISTEN_ADDR"}
		}, "NOTIFIED_HTTP_ADDR is not read by any flag of `notified-bridge run`"},
		{"env var misspelt in the compose file", func(t *testing.T, d *deployment) {
			editService(t, d, "setup", renameEnv("NOTIFIED_CHANNEL", "NOTIFIED_CHANNELS"))
		}, "NOTIFIED_CHANNELS is not read by any flag of `notified-bridge setup`"},
		{"healthcheck command removed from the CLI", func(t *testing.T, d *deployment) {
			delete(d.cli.commands, "healthcheck")
		}, `no command "healthcheck"`},
		{"healthcheck no longer reads NOTIFIED_HTTP_ADDR", func(t *testing.T, d *deployment) {
			d.cli.command("healthcheck").flag("http-addr").envVars = nil
		}, "the health check does not get the bridge's address"},
		{"no NOTIFIED_HTTP_ADDR", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", func(s *types.ServiceConfig) { delete(s.Environment, "NOTIFIED_HTTP_ADDR") })
		}, "NOTIFIED_HTTP_ADDR is not set"},
		{"no DATABASE_URL", func(t *testing.T, d *deployment) {
			editService(t, d, "setup", func(s *types.ServiceConfig) { delete(s.Environment, "DATABASE_URL") })
		}, "setup: DATABASE_URL is not set"},
		{"bridge listens on another port than published", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", setEnv("NOTIFIED_HTTP_ADDR", ":9090"))
		}, "port 9090 is not a published container port"},
		{"bridge listens on loopback inside the container", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", setEnv("NOTIFIED_HTTP_ADDR", "127.0.0.1:8080"))
		}, "unreachable through the published port"},
		{"web UI without a password", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", func(s *types.ServiceConfig) { delete(s.Environment, "NOTIFIED_UI_PASSWORD") })
		}, "set both NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD"},
		{"setup and bridge on different channels", func(t *testing.T, d *deployment) {
			editService(t, d, "setup", setEnv("NOTIFIED_CHANNEL", "orders"))
		}, `setup and bridge disagree on --channel: "orders" and "events"`},
		{"worker on another schema", func(t *testing.T, d *deployment) {
			editService(t, d, "worker", setEnv("NOTIFIED_SCHEMA", "public"))
		}, `worker: NOTIFIED_SCHEMA is "public", the bridge's is "notified"`},
		{"database URL to another database", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", setEnv("DATABASE_URL", "postgres://postgres:postgres@postgres:5432/other?sslmode=disable"))
		}, `bridge: DATABASE_URL names database "other", postgres creates "app"`},
		{"setup does not wait for a healthy postgres", func(t *testing.T, d *deployment) {
			editService(t, d, "setup", func(s *types.ServiceConfig) {
				s.DependsOn["postgres"] = types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: true}
			})
		}, `setup: depends_on postgres is "service_started", want "service_healthy"`},
		{"bridge starts before setup completes", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", func(s *types.ServiceConfig) {
				s.DependsOn["setup"] = types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: true}
			})
		}, `bridge: depends_on setup is "service_started", want "service_completed_successfully"`},
		{"postgres health check is not pg_isready", func(t *testing.T, d *deployment) {
			editService(t, d, "postgres", func(s *types.ServiceConfig) { s.HealthCheck.Test = types.HealthCheckTest{"CMD", "true"} })
		}, "postgres: the health check does not run pg_isready"},
		{"bridge health check through a shell", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", func(s *types.ServiceConfig) {
				s.HealthCheck.Test = types.HealthCheckTest{"CMD-SHELL", "/notified-bridge healthcheck"}
			})
		}, "the image has no shell"},
		{"bridge health check on another binary path", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", func(s *types.ServiceConfig) {
				s.HealthCheck.Test = types.HealthCheckTest{"CMD", "/usr/local/bin/notified-bridge", "healthcheck"}
			})
		}, `runs "/usr/local/bin/notified-bridge", the image's binary is "/notified-bridge"`},
		{"bridge built from the worker target", func(t *testing.T, d *deployment) {
			editService(t, d, "bridge", func(s *types.ServiceConfig) { s.Build.Target = workerTarget })
		}, `bridge: built from target "worker", want "bridge"`},
		{"postgres image without a tag", func(t *testing.T, d *deployment) {
			editService(t, d, "postgres", func(s *types.ServiceConfig) { s.Image = "postgres" })
		}, `postgres: image "postgres" is not the official postgres image with a 16 or 17 tag`},
		{"routes that the example worker does not declare", func(t *testing.T, d *deployment) {
			editService(t, d, "setup", setEnv("NOTIFIED_ROUTES", "user_signed_up=send_welcome_email,order_paid=call_webhook"))
		}, "order_paid=call_webhook is not a route of the example worker"},
		{"cgo left on", func(t *testing.T, d *deployment) {
			d.reparseDockerfile(t, strings.ReplaceAll(d.dockerfileText, "CGO_ENABLED=0 ", ""))
		}, "without CGO_ENABLED=0"},
		{"final stage runs as root", func(t *testing.T, d *deployment) {
			text := strings.ReplaceAll(d.dockerfileText, "static-debian12:nonroot", "static-debian12")
			d.reparseDockerfile(t, strings.ReplaceAll(text, "USER 65532:65532", "USER root"))
		}, `stage "bridge" runs as root`},
		{"binary copied elsewhere than the entrypoint", func(t *testing.T, d *deployment) {
			d.reparseDockerfile(t, strings.Replace(d.dockerfileText, "/out/notified-bridge /notified-bridge", "/out/notified-bridge /bin/notified-bridge", 1))
		}, `stage "bridge": ENTRYPOINT runs "/notified-bridge", which no COPY --from=build puts there`},
		{"bridge stage ships the worker", func(t *testing.T, d *deployment) {
			d.reparseDockerfile(t, strings.Replace(d.dockerfileText, "/out/notified-bridge /notified-bridge", "/out/example-worker /notified-bridge", 1))
		}, `stage "bridge": "/notified-bridge" is built from ./cmd/example-worker, want ./cmd/notified-bridge`},
		{".dockerignore excludes the embedded SQL", func(t *testing.T, d *deployment) {
			d.dockerignore = append(d.dockerignore, "**/*.sql")
		}, ".dockerignore excludes migrations/001_notified.up.sql"},
		{".dockerignore excludes a package", func(t *testing.T, d *deployment) {
			d.dockerignore = append(d.dockerignore, "/bridge/")
		}, ".dockerignore excludes bridge/bridge.go"},
		{"sources copied before go mod download", func(t *testing.T, d *deployment) {
			d.reparseDockerfile(t, strings.Replace(d.dockerfileText, "COPY go.mod go.sum ./\n", "COPY . .\n", 1))
		}, "go mod download does not run between COPY go.mod go.sum and COPY . ."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := loadDeployment(t, nil)
			tt.mutate(t, d)
			problems := d.check()
			require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }),
				"want a problem containing %q, got:\n%s", tt.want, strings.Join(problems, "\n"))
		})
	}

	t.Run("worker variable the example worker does not read", func(t *testing.T) {
		t.Parallel()
		d := loadDeployment(t, nil)
		help := "  -smtp-addr string\n    \tSMTP server (default $EXAMPLE_SMTP_ADDR)\n  -database-url string (default $DATABASE_URL)\n"
		problems := checkWorker(d.project, help)
		require.Contains(t, problems, "worker: EXAMPLE_WEBHOOK_URL is not read by example-worker (its -h output does not name $EXAMPLE_WEBHOOK_URL)")
		require.NotContains(t, strings.Join(problems, "\n"), "EXAMPLE_SMTP_ADDR is not read")
	})
}

// deployment is what the checks look at: the loaded compose project, a
// model of the CLI's commands and flags, and the parsed Dockerfile.
type deployment struct {
	project        *types.Project
	cli            *cliModel
	dockerfilePath string
	dockerfileText string
	stages         []dockerStage
	dockerignore   []string // the patterns of .dockerignore
}

// loadDeployment loads docker-compose.yml with env as the only variables
// for interpolation (not the test's environment, so that a developer's
// shell does not change the result), the CLI from newApp, and the
// Dockerfile.
func loadDeployment(t *testing.T, env map[string]string) *deployment {
	t.Helper()
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	opts, err := composecli.NewProjectOptions([]string{composePath},
		composecli.WithWorkingDirectory(composeRepoRoot),
		composecli.WithEnv(envList),
		composecli.WithInterpolation(true),
	)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	require.NoError(t, err, "load %s", composePath)

	d := &deployment{project: p, cli: newCLIModel(newApp()), dockerfilePath: filepath.Join(composeRepoRoot, "Dockerfile")}
	text, err := os.ReadFile(d.dockerfilePath)
	require.NoError(t, err)
	d.reparseDockerfile(t, string(text))
	ignore, err := os.ReadFile(filepath.Join(composeRepoRoot, ".dockerignore"))
	require.NoError(t, err)
	for _, line := range strings.Split(string(ignore), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			d.dockerignore = append(d.dockerignore, line)
		}
	}
	return d
}

func (d *deployment) reparseDockerfile(t *testing.T, text string) {
	t.Helper()
	stages, err := parseDockerfile(text)
	require.NoError(t, err)
	d.dockerfileText, d.stages = text, stages
}

// The CLI model: the commands and flags of the urfave/cli app, copied so
// that a test can change them without touching the package's flags.

type cliFlag struct {
	names      []string
	envVars    []string
	takesValue bool
	value      string // the default, for string flags
}

type cliCommand struct {
	name  string
	flags []*cliFlag
	sub   map[string]*cliCommand
}

type cliModel struct {
	name     string
	global   []*cliFlag
	commands map[string]*cliCommand
}

// modelHelpFlag is the --help, -h that urfave/cli adds to the app and to every
// command.
func modelHelpFlag() *cliFlag { return &cliFlag{names: []string{"help", "h"}} }

func newCLIModel(app *cli.App) *cliModel {
	return &cliModel{name: app.Name, global: append(modelFlags(app.Flags), modelHelpFlag()), commands: modelCommands(app.Commands)}
}

func modelCommands(cmds []*cli.Command) map[string]*cliCommand {
	m := map[string]*cliCommand{}
	for _, c := range cmds {
		mc := &cliCommand{name: c.Name, flags: append(modelFlags(c.Flags), modelHelpFlag()), sub: modelCommands(c.Subcommands)}
		for _, n := range c.Names() {
			m[n] = mc
		}
	}
	return m
}

func modelFlags(flags []cli.Flag) []*cliFlag {
	var out []*cliFlag
	for _, f := range flags {
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			continue // a command's copy of a global flag: resolve reads m.global
		}
		mf := &cliFlag{names: slices.Clone(f.Names()), takesValue: true}
		if df, ok := f.(cli.DocGenerationFlag); ok {
			mf.envVars = slices.Clone(df.GetEnvVars())
			mf.takesValue = df.TakesValue()
		}
		if sf, ok := f.(*cli.StringFlag); ok {
			mf.value = sf.Value
		}
		out = append(out, mf)
	}
	return out
}

func (m *cliModel) command(name string) *cliCommand { return m.commands[name] }

func (c *cliCommand) flag(name string) *cliFlag { return findModelFlag(c.flags, name) }

func findModelFlag(flags []*cliFlag, name string) *cliFlag {
	for _, f := range flags {
		if slices.Contains(f.names, name) {
			return f
		}
	}
	return nil
}

// invocation is a command line resolved against the CLI model.
type invocation struct {
	path    string      // "run", "routes add"
	command *cliCommand // nil if there is no valid command
	given   map[string]string
}

// resolve reads args as urfave/cli does: global flags, the command and any
// subcommand, then the command's flags (global ones too) and arguments. The
// first argument ends the flags: a flag after it is a mistake.
func (m *cliModel) resolve(args []string) (invocation, []string) {
	inv := invocation{given: map[string]string{}}
	var problems []string
	flags, where := m.global, m.name
	commands := m.commands
	afterArgs := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) > 1 && a[0] == '-' && inv.command != nil && commands == nil && afterArgs {
			problems = append(problems, fmt.Sprintf("flag %s of %s follows its arguments: it must come before them", a, where))
			continue
		}
		if len(a) > 1 && a[0] == '-' {
			name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			f := findModelFlag(flags, name)
			if f == nil && inv.command != nil {
				f = findModelFlag(m.global, name)
			}
			if f == nil {
				problems = append(problems, fmt.Sprintf("flag --%s is not a flag of %s", name, where))
				continue
			}
			if f.takesValue && !hasValue && i+1 < len(args) {
				i++
				value = args[i]
			}
			inv.given[f.names[0]] = value
			continue
		}
		if commands == nil { // a positional argument
			afterArgs = true
			continue
		}
		c, ok := commands[a]
		if !ok {
			if inv.command == nil {
				problems = append(problems, fmt.Sprintf("no command %q in %s", a, m.name))
				return inv, problems
			}
			commands = nil // the command's first argument
			afterArgs = true
			continue
		}
		inv.command = c
		inv.path = strings.TrimSpace(inv.path + " " + c.name)
		flags, where = c.flags, strconv.Quote(inv.path)
		commands = c.sub
		if len(commands) == 0 {
			commands = nil
		}
	}
	if inv.command == nil && len(problems) == 0 {
		problems = append(problems, "no command in "+strconv.Quote(strings.Join(args, " ")))
	}
	return inv, problems
}

// env returns the flags that read each environment variable: the global
// ones and those of the command.
func (m *cliModel) env(c *cliCommand) map[string]*cliFlag {
	out := map[string]*cliFlag{}
	for _, f := range append(slices.Clone(m.global), c.flags...) {
		for _, e := range f.envVars {
			out[e] = f
		}
	}
	return out
}

// effective is the value a string flag gets in a service: from the command
// line, else from the environment, else its default.
func (m *cliModel) effective(inv invocation, svc types.ServiceConfig, f *cliFlag) string {
	if v, ok := inv.given[f.names[0]]; ok {
		return v
	}
	for _, e := range f.envVars {
		if v, ok := svc.Environment[e]; ok && v != nil {
			return *v
		}
	}
	return f.value
}

// The checks.

func (d *deployment) check() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	p := d.project

	for _, name := range []string{"postgres", "setup", "bridge", "worker", "mailpit", "httpbin"} {
		if _, ok := p.Services[name]; !ok {
			add("no service %q", name)
		}
	}
	if len(problems) > 0 {
		return problems
	}

	// Images: public ones pinned to a tag, ours built from the Dockerfile.
	for name, re := range map[string]*regexp.Regexp{
		"postgres": regexp.MustCompile(`^(docker\.io/)?(library/)?postgres:1[67]([.-][\w.-]+)?$`),
		"mailpit":  regexp.MustCompile(`^(docker\.io/)?axllent/mailpit:v?\d[\w.-]*$`),
		"httpbin":  regexp.MustCompile(`^(docker\.io/|ghcr\.io/)?mccutchen/go-httpbin:v?\d[\w.-]*$`),
	} {
		svc := p.Services[name]
		if !re.MatchString(svc.Image) {
			switch name {
			case "postgres":
				add("postgres: image %q is not the official postgres image with a 16 or 17 tag", svc.Image)
			default:
				add("%s: image %q does not match %s (pin a version tag)", name, svc.Image, re)
			}
		}
		if svc.Build != nil {
			add("%s: should use its public image, not a build", name)
		}
	}
	problems = append(problems, checkDockerfile(d.stages)...)
	inputs, err := buildInputs()
	if err != nil {
		add("list the files the images are built from: %v", err)
	}
	for _, f := range inputs {
		if dockerIgnored(d.dockerignore, f) {
			add(".dockerignore excludes %s, which the images are built from", f)
		}
	}
	binaries := map[string]string{} // target -> binary the image runs
	for _, s := range d.stages {
		if len(s.entrypoint) > 0 {
			binaries[s.name] = s.entrypoint[0]
		}
	}
	for name, target := range map[string]string{"setup": bridgeTarget, "bridge": bridgeTarget, "worker": workerTarget} {
		svc := p.Services[name]
		if svc.Build == nil {
			add("%s: not built from the Dockerfile", name)
			continue
		}
		df := svc.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if !filepath.IsAbs(df) {
			df = filepath.Join(svc.Build.Context, df)
		}
		if want, _ := filepath.Abs(d.dockerfilePath); df != want {
			add("%s: built from %s, want %s", name, df, want)
		}
		if svc.Build.Target != target {
			add("%s: built from target %q, want %q", name, svc.Build.Target, target)
		}
		if len(svc.Entrypoint) > 0 && svc.Entrypoint[0] != binaries[target] {
			add("%s: entrypoint %q is not the image's binary %q", name, svc.Entrypoint[0], binaries[target])
		}
	}

	// The bridge services: commands, flags and variables against the CLI.
	invs := map[string]invocation{}
	for name, want := range map[string]string{"setup": "setup", "bridge": "run"} {
		svc := p.Services[name]
		args := slices.Clone([]string(svc.Command))
		if len(svc.Entrypoint) > 1 {
			args = append(slices.Clone([]string(svc.Entrypoint[1:])), args...)
		}
		if len(args) == 0 {
			args = d.stage(bridgeTarget).cmd
		}
		inv, probs := d.cli.resolve(args)
		for _, pr := range probs {
			add("%s: command %q: %s", name, strings.Join(args, " "), pr)
		}
		if inv.command == nil {
			continue
		}
		if inv.path != want {
			add("%s: runs `%s %s`, want `%s %s`", name, d.cli.name, inv.path, d.cli.name, want)
		}
		invs[name] = inv
		readers := d.cli.env(inv.command)
		for _, e := range composeKeys(svc.Environment) {
			if (strings.HasPrefix(e, "NOTIFIED_") || e == "DATABASE_URL") && readers[e] == nil {
				add("%s: %s is not read by any flag of `%s %s`", name, e, d.cli.name, inv.path)
			}
		}
		if serviceEnv(svc, "DATABASE_URL") == "" && inv.given["database-url"] == "" {
			add("%s: DATABASE_URL is not set", name)
		}
	}
	if inv, ok := invs["bridge"]; ok {
		problems = append(problems, d.checkBridgeHTTP(inv)...)
	}
	if setup, ok := invs["setup"]; ok {
		if run, ok := invs["bridge"]; ok {
			problems = append(problems, d.checkShared(setup, run)...)
		}
		problems = append(problems, d.checkRoutes(setup)...)
	}
	problems = append(problems, d.checkDatabaseURLs(invs)...)

	// Health checks.
	pg := p.Services["postgres"]
	if hc := pg.HealthCheck; hc == nil || hc.Disable {
		add("postgres: no health check")
	} else {
		args := healthArgs(hc.Test)
		if !slices.Contains(args, "pg_isready") {
			add("postgres: the health check does not run pg_isready: %q", hc.Test)
		}
		if u := wordAfter(args, "-U"); u != serviceEnv(pg, "POSTGRES_USER") {
			add("postgres: pg_isready -U %q, POSTGRES_USER is %q", u, serviceEnv(pg, "POSTGRES_USER"))
		}
		if db := wordAfter(args, "-d"); db != serviceEnv(pg, "POSTGRES_DB") {
			add("postgres: pg_isready -d %q, POSTGRES_DB is %q", db, serviceEnv(pg, "POSTGRES_DB"))
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
			add("postgres: set the health check's interval, timeout and retries")
		}
	}
	if !slices.ContainsFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
		return strings.HasPrefix(v.Target, "/docker-entrypoint-initdb.d")
	}) {
		add("postgres: no init SQL mounted into /docker-entrypoint-initdb.d")
	}
	if !slices.ContainsFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data"
	}) {
		add("postgres: no named volume for /var/lib/postgresql/data")
	}
	if hc := p.Services["mailpit"].HealthCheck; hc == nil || !slices.Contains(healthArgs(hc.Test), "readyz") {
		add("mailpit: no `/mailpit readyz` health check")
	}
	for _, name := range []string{"setup", "bridge", "worker"} {
		// Distroless: no shell for CMD-SHELL.
		if hc := p.Services[name].HealthCheck; hc != nil && len(hc.Test) > 0 && hc.Test[0] == "CMD-SHELL" {
			add("%s: health check %q needs a shell, and the image has no shell", name, hc.Test)
		}
	}

	// Start-up order.
	for _, dep := range []struct{ service, on, condition string }{
		{"setup", "postgres", types.ServiceConditionHealthy},
		{"bridge", "setup", types.ServiceConditionCompletedSuccessfully},
		{"worker", "setup", types.ServiceConditionCompletedSuccessfully},
		{"worker", "mailpit", ""},
		{"worker", "httpbin", ""},
	} {
		got, ok := p.Services[dep.service].DependsOn[dep.on]
		switch {
		case !ok:
			add("%s: does not depend on %s", dep.service, dep.on)
		case dep.condition != "" && got.Condition != dep.condition:
			add("%s: depends_on %s is %q, want %q", dep.service, dep.on, got.Condition, dep.condition)
		}
	}
	for _, name := range composeKeys(p.Services) {
		for on, dep := range p.Services[name].DependsOn {
			if hc := p.Services[on].HealthCheck; dep.Condition == types.ServiceConditionHealthy && (hc == nil || hc.Disable) {
				add("%s: waits for %s to be healthy, and %s has no health check", name, on, on)
			}
		}
	}
	if r := p.Services["setup"].Restart; r != "" && r != types.RestartPolicyNo {
		add("setup: restart %q: a one-shot must not restart", r)
	}
	for _, name := range []string{"bridge", "worker"} {
		svc := p.Services[name]
		if svc.Restart != types.RestartPolicyUnlessStopped && svc.Restart != types.RestartPolicyAlways {
			add("%s: restart %q, want unless-stopped", name, svc.Restart)
		}
		if svc.StopGracePeriod == nil {
			add("%s: no stop_grace_period", name)
		}
	}
	return problems
}

func (d *deployment) stage(name string) dockerStage {
	for _, s := range d.stages {
		if s.name == name {
			return s
		}
	}
	return dockerStage{}
}

// checkBridgeHTTP checks the bridge's address against its published port,
// the web UI's authentication rule and the health check.
func (d *deployment) checkBridgeHTTP(run invocation) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	svc := d.project.Services["bridge"]
	httpAddr := run.command.flag("http-addr")
	if httpAddr == nil {
		return []string{"bridge: `run` has no --http-addr flag"}
	}
	addr := d.cli.effective(run, svc, httpAddr)
	if serviceEnv(svc, "NOTIFIED_HTTP_ADDR") == "" {
		add("bridge: NOTIFIED_HTTP_ADDR is not set: the web UI and the health check need it")
	}
	if addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			add("bridge: NOTIFIED_HTTP_ADDR %q is not host:port or :port", addr)
		} else {
			if host != "" && host != "0.0.0.0" && host != "::" {
				add("bridge: listens on %s inside the container, unreachable through the published port: use :%s", addr, port)
			}
			if !slices.ContainsFunc(svc.Ports, func(pc types.ServicePortConfig) bool { return strconv.Itoa(int(pc.Target)) == port }) {
				add("bridge: NOTIFIED_HTTP_ADDR %q: port %s is not a published container port", addr, port)
			}
		}
		// The rule `run` applies at start-up.
		user, password := d.cli.effective(run, svc, run.command.flag("ui-user")), d.cli.effective(run, svc, run.command.flag("ui-password"))
		if (user == "") != (password == "") {
			add("bridge: set both NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD, or neither")
		} else if err := web.CheckAddr(addr, user != "", run.given["insecure-ui"] != "" || serviceEnv(svc, "NOTIFIED_INSECURE_UI") != ""); err != nil {
			add("bridge: %v", err)
		}
	}

	hc := svc.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 2 {
		return append(problems, "bridge: no health check")
	}
	binary := ""
	if len(d.stage(bridgeTarget).entrypoint) > 0 {
		binary = d.stage(bridgeTarget).entrypoint[0]
	}
	if hc.Test[0] != "CMD" {
		return problems // reported with the other shell checks
	}
	if hc.Test[1] != binary {
		add("bridge: the health check runs %q, the image's binary is %q", hc.Test[1], binary)
	}
	inv, probs := d.cli.resolve(hc.Test[2:])
	for _, pr := range probs {
		add("bridge: health check %q: %s", hc.Test, pr)
	}
	if inv.command == nil {
		return problems
	}
	if inv.path != "healthcheck" {
		add("bridge: the health check runs `%s`, want `healthcheck`", inv.path)
	}
	if f := inv.command.flag("http-addr"); f == nil {
		add("bridge: `%s` has no --http-addr flag", inv.path)
	} else if got := d.cli.effective(inv, svc, f); got != addr {
		add("bridge: the health check does not get the bridge's address: it asks %q, the bridge listens on %q", got, addr)
	}
	return problems
}

// checkShared requires setup and the bridge to agree on every setting both
// commands read (the schema, the table, the channel, the id column).
func (d *deployment) checkShared(setup, run invocation) []string {
	var problems []string
	setupSvc, runSvc := d.project.Services["setup"], d.project.Services["bridge"]
	var shared []*cliFlag
	shared = append(shared, d.cli.global...)
	for _, f := range setup.command.flags {
		if run.command.flag(f.names[0]) != nil {
			shared = append(shared, f)
		}
	}
	for _, f := range shared {
		if len(f.envVars) == 0 || f.names[0] == "log-level" || f.names[0] == "log-format" {
			continue // each process may log as it likes
		}
		a := d.cli.effective(setup, setupSvc, f)
		b := d.cli.effective(run, runSvc, run.command.flagOrGlobal(d.cli, f.names[0]))
		if a != b {
			problems = append(problems, fmt.Sprintf("setup and bridge disagree on --%s: %q and %q", f.names[0], a, b))
		}
	}
	return problems
}

func (c *cliCommand) flagOrGlobal(m *cliModel, name string) *cliFlag {
	if f := c.flag(name); f != nil {
		return f
	}
	return findModelFlag(m.global, name)
}

// checkRoutes requires setup's routes to be the example worker's, so that
// events committed before the worker first starts are routed as it would
// route them.
func (d *deployment) checkRoutes(setup invocation) []string {
	f := setup.command.flag("route")
	if f == nil {
		return []string{"setup: `setup` has no --route flag"}
	}
	var spec string
	for _, e := range f.envVars {
		spec += serviceEnv(d.project.Services["setup"], e)
	}
	if spec == "" {
		return nil // the worker declares them at start-up
	}
	want := map[string]bool{}
	for _, r := range example.Routes() {
		want[r.Event+"="+r.Kind] = true
	}
	var problems []string
	got := map[string]bool{}
	for _, r := range strings.Split(spec, ",") {
		r = strings.TrimSpace(r)
		got[r] = true
		if !want[r] {
			problems = append(problems, fmt.Sprintf("setup: NOTIFIED_ROUTES: %s is not a route of the example worker", r))
		}
	}
	for _, r := range composeKeys(want) {
		if !got[r] {
			problems = append(problems, fmt.Sprintf("setup: NOTIFIED_ROUTES lacks the example worker's route %s", r))
		}
	}
	return problems
}

// checkDatabaseURLs requires every process to reach the postgres service's
// database as its user, and the worker to use the bridge's database and
// schema.
func (d *deployment) checkDatabaseURLs(invs map[string]invocation) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	pg := d.project.Services["postgres"]
	for _, name := range []string{"setup", "bridge", "worker"} {
		raw := serviceEnv(d.project.Services[name], "DATABASE_URL")
		if inv, ok := invs[name]; ok {
			raw = d.cli.effective(inv, d.project.Services[name], findModelFlag(d.cli.global, "database-url"))
		}
		if raw == "" {
			continue // reported elsewhere
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			add("%s: DATABASE_URL is not a postgres:// URL", name)
			continue
		}
		if u.Hostname() != "postgres" {
			add("%s: DATABASE_URL connects to %q, not the postgres service", name, u.Hostname())
		}
		if db := strings.TrimPrefix(u.Path, "/"); db != serviceEnv(pg, "POSTGRES_DB") {
			add("%s: DATABASE_URL names database %q, postgres creates %q", name, db, serviceEnv(pg, "POSTGRES_DB"))
		}
		pw, _ := u.User.Password()
		if u.User.Username() != serviceEnv(pg, "POSTGRES_USER") || pw != serviceEnv(pg, "POSTGRES_PASSWORD") {
			add("%s: DATABASE_URL's user and password are not POSTGRES_USER and POSTGRES_PASSWORD", name)
		}
	}
	if run, ok := invs["bridge"]; ok {
		worker, bridge := d.project.Services["worker"], d.project.Services["bridge"]
		for env, flag := range map[string]string{"DATABASE_URL": "database-url", "NOTIFIED_SCHEMA": "schema"} {
			if got, want := serviceEnv(worker, env), d.cli.effective(run, bridge, findModelFlag(d.cli.global, flag)); got != want {
				add("worker: %s is %q, the bridge's is %q", env, got, want)
			}
		}
	}
	return problems
}

// checkWorker checks the worker service against help, the -h output of
// cmd/example-worker: each variable it sets must be one the worker names
// as $NAME, each flag in its command one the worker lists, and the handlers'
// required settings must be set.
func checkWorker(p *types.Project, help string) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	svc, ok := p.Services["worker"]
	if !ok {
		return []string{"no service \"worker\""}
	}
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(help, -1) {
		read[m[1]] = true
	}
	for _, e := range composeKeys(svc.Environment) {
		if !read[e] {
			add("worker: %s is not read by example-worker (its -h output does not name $%s)", e, e)
		}
	}
	for _, e := range []string{"DATABASE_URL", "EXAMPLE_SMTP_ADDR", "EXAMPLE_WEBHOOK_URL"} {
		if serviceEnv(svc, e) == "" {
			add("worker: %s is not set", e)
		}
	}
	flags := map[string]bool{"h": true, "help": true}
	for _, m := range regexp.MustCompile(`(?m)^\s+--?([A-Za-z0-9][\w-]*)`).FindAllStringSubmatch(help, -1) {
		flags[m[1]] = true
	}
	for _, a := range svc.Command {
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && !flags[name] {
			add("worker: flag %s is not a flag of example-worker", a)
		}
	}
	return problems
}

// exampleWorkerHelp builds cmd/example-worker and returns its -h output.
func exampleWorkerHelp(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "example-worker")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../example-worker").CombinedOutput()
	require.NoError(t, err, "build example-worker: %s", out)
	cmd := exec.CommandContext(ctx, bin, "-h")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err = cmd.CombinedOutput() // the flag package exits 0 after -h
	require.NoError(t, err, "example-worker -h: %s", out)
	require.Contains(t, string(out), "$", "example-worker -h names no environment variable:\n%s", out)
	return string(out)
}

// The Dockerfile, parsed simply: stages, and in each its instructions.

type dockerStage struct {
	name, base string
	instrs     []dockerInstr
	user       string
	entrypoint []string
	cmd        []string
}

type dockerInstr struct {
	op   string // upper case: RUN, COPY, ...
	args string
}

// dockerCopy is a COPY instruction: COPY [--from=stage] src... dst.
type dockerCopy struct {
	from string
	srcs []string
	dst  string
}

func parseCopy(args string) dockerCopy {
	var c dockerCopy
	var rest []string
	for _, f := range strings.Fields(args) {
		if v, ok := strings.CutPrefix(f, "--from="); ok {
			c.from = v
		} else if !strings.HasPrefix(f, "--") {
			rest = append(rest, f)
		}
	}
	if len(rest) > 0 {
		c.srcs, c.dst = rest[:len(rest)-1], rest[len(rest)-1]
	}
	return c
}

func parseDockerfile(text string) ([]dockerStage, error) {
	var stages []dockerStage
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if l, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	for _, line := range lines {
		op, args, _ := strings.Cut(line, " ")
		op, args = strings.ToUpper(op), strings.TrimSpace(args)
		if op == "FROM" {
			f := strings.Fields(args)
			s := dockerStage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if op == "ARG" {
				continue
			}
			return nil, fmt.Errorf("dockerfile: %s before FROM", op)
		}
		s := &stages[len(stages)-1]
		s.instrs = append(s.instrs, dockerInstr{op: op, args: args})
		switch op {
		case "USER":
			s.user = args
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(args), &v); err != nil {
				v = []string{"/bin/sh", "-c", args} // the shell form
			}
			if op == "ENTRYPOINT" {
				s.entrypoint = v
			} else {
				s.cmd = v
			}
		}
	}
	return stages, nil
}

// goBuilds returns the output path and package of each `go build -o OUT PKG`
// in args, and whether each was run with CGO_ENABLED=0 and -trimpath.
func goBuilds(args string) (outputs map[string]string, problems []string) {
	outputs = map[string]string{}
	for _, cmd := range regexp.MustCompile(`\s*(?:&&|;)\s*`).Split(args, -1) {
		i := strings.Index(cmd, "go build")
		if i < 0 {
			continue
		}
		if !strings.Contains(cmd[:i], "CGO_ENABLED=0") {
			problems = append(problems, fmt.Sprintf("Dockerfile: %q is run without CGO_ENABLED=0", cmd))
		}
		if !strings.Contains(cmd, "-trimpath") {
			problems = append(problems, fmt.Sprintf("Dockerfile: %q is run without -trimpath", cmd))
		}
		fields := strings.Fields(cmd[i:])
		out := wordAfter(fields, "-o")
		pkg := fields[len(fields)-1]
		if out == "" || !strings.HasPrefix(pkg, "./cmd/") {
			problems = append(problems, fmt.Sprintf("Dockerfile: %q is not go build ... -o OUT ./cmd/NAME", cmd))
			continue
		}
		outputs[out] = pkg
	}
	return outputs, problems
}

func checkDockerfile(stages []dockerStage) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(stages) < 2 {
		return []string{"Dockerfile: not a multi-stage build"}
	}
	build := stages[0]
	if !strings.HasPrefix(build.base, "golang:1.26") || !strings.Contains(build.base, "bookworm") {
		add("Dockerfile: the build stage is FROM %s, want golang:1.26-bookworm", build.base)
	}
	if build.name == "" {
		add("Dockerfile: name the build stage (FROM ... AS build)")
	}
	// go mod download between copying go.mod/go.sum and the sources, so
	// that its layer is reused until the dependencies change.
	step := 0 // 0: want COPY go.mod go.sum, 1: want go mod download, 2: want COPY . .
	outputs := map[string]string{}
	for _, in := range build.instrs {
		switch {
		case in.op == "COPY" && step == 0 && slices.Contains(parseCopy(in.args).srcs, "go.mod") && slices.Contains(parseCopy(in.args).srcs, "go.sum"):
			step = 1
		case in.op == "RUN" && step == 1 && strings.Contains(in.args, "go mod download"):
			step = 2
		case in.op == "COPY" && step == 2 && slices.Contains(parseCopy(in.args).srcs, "."):
			step = 3
		case in.op == "RUN":
			outs, probs := goBuilds(in.args)
			problems = append(problems, probs...)
			for o, p := range outs {
				outputs[o] = p
			}
		}
	}
	if step != 3 {
		add("Dockerfile: go mod download does not run between COPY go.mod go.sum and COPY . .")
	}
	for _, target := range []string{bridgeTarget, workerTarget} {
		i := slices.IndexFunc(stages, func(s dockerStage) bool { return s.name == target })
		if i < 0 {
			add("Dockerfile: no stage %q", target)
			continue
		}
		s := stages[i]
		if !strings.HasPrefix(s.base, "gcr.io/distroless/static-debian12") {
			add("Dockerfile: stage %q is FROM %s, want gcr.io/distroless/static-debian12:nonroot", target, s.base)
		}
		nonroot := strings.HasSuffix(s.base, ":nonroot")
		if s.user != "" {
			u, _, _ := strings.Cut(s.user, ":")
			nonroot = u != "root" && u != "0"
		}
		if !nonroot {
			add("Dockerfile: stage %q runs as root: use a :nonroot base or USER 65532", target)
		}
		if len(s.entrypoint) != 1 {
			add("Dockerfile: stage %q: ENTRYPOINT %q should be the binary alone, in exec form", target, s.entrypoint)
			continue
		}
		bin := s.entrypoint[0]
		var src string
		for _, in := range s.instrs {
			if c := parseCopy(in.args); in.op == "COPY" && c.from == build.name && len(c.srcs) == 1 && c.dst == bin {
				src = c.srcs[0]
			}
		}
		if src == "" {
			add("Dockerfile: stage %q: ENTRYPOINT runs %q, which no COPY --from=%s puts there", target, bin, build.name)
			continue
		}
		if pkg := outputs[src]; pkg != targetPackages[target] {
			add("Dockerfile: stage %q: %q is built from %s, want %s", target, bin, pkg, targetPackages[target])
		}
	}
	// `docker build .` without a target builds the bridge.
	if last := stages[len(stages)-1]; last.name != bridgeTarget {
		add("Dockerfile: the last stage is %q: make it %q, the default target", last.name, bridgeTarget)
	}
	return problems
}

// The build context.

var (
	buildInputsOnce sync.Once
	buildInputsList []string
	buildInputsErr  error
)

// buildInputs returns the files, relative to the repository root, that
// building the two binaries reads: go.mod, go.sum, and the Go and embedded
// files of every package of the module they import.
func buildInputs() ([]string, error) {
	buildInputsOnce.Do(func() {
		root, err := filepath.Abs(composeRepoRoot)
		if err != nil {
			buildInputsErr = err
			return
		}
		out, err := exec.Command("go", "list", "-deps",
			"-f", `{{if not .Standard}}{{.Dir}}|{{join .GoFiles ","}},{{join .EmbedFiles ","}}{{end}}`,
			"github.com/notified/notified/cmd/notified-bridge", "github.com/notified/notified/cmd/example-worker").Output()
		if err != nil {
			buildInputsErr = fmt.Errorf("go list: %w", err)
			return
		}
		list := []string{"go.mod", "go.sum"}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			dir, files, _ := strings.Cut(line, "|")
			rel, err := filepath.Rel(root, dir)
			if err != nil || strings.HasPrefix(rel, "..") {
				continue // another module
			}
			for _, f := range strings.Split(files, ",") {
				if f != "" {
					list = append(list, filepath.ToSlash(filepath.Join(rel, f)))
				}
			}
		}
		buildInputsList = list
	})
	return buildInputsList, buildInputsErr
}

// dockerIgnored reports whether the .dockerignore patterns exclude path (a
// slash-separated path relative to the context), following Docker's rules
// closely enough for this repository: a pattern excludes what it matches
// and everything below, "**/" matches any number of directories, "!"
// re-includes, and the last matching pattern wins.
func dockerIgnored(patterns []string, path string) bool {
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.Trim(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "./"), "/")
		for q := path; q != "." && q != "/" && q != ""; q = filepath.ToSlash(filepath.Dir(q)) {
			match, _ := filepath.Match(p, q)
			if rest, ok := strings.CutPrefix(p, "**/"); ok && !match {
				segs := strings.Split(q, "/")
				for i := range segs {
					if m, _ := filepath.Match(rest, strings.Join(segs[i:], "/")); m {
						match = true
					}
				}
			}
			if match {
				ignored = !neg
				break
			}
		}
	}
	return ignored
}

// Helpers.

func serviceEnv(svc types.ServiceConfig, name string) string {
	if v, ok := svc.Environment[name]; ok && v != nil {
		return *v
	}
	return ""
}

// healthArgs returns a health check's command as words.
func healthArgs(test types.HealthCheckTest) []string {
	if len(test) == 0 {
		return nil
	}
	switch test[0] {
	case "CMD":
		return test[1:]
	case "CMD-SHELL":
		return strings.Fields(strings.Join(test[1:], " "))
	default:
		return test
	}
}

// wordAfter returns the word after flag in args ("" if none).
func wordAfter(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func composeKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
