package config

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

type target struct {
	Name    string            `yaml:"name"`
	URL     string            `yaml:"health_url"`
	Labels  map[string]limits `yaml:"labels"`
	Timeout time.Duration     `yaml:"-"`
}

type limits struct {
	Max int `yaml:"max"`
}

type settings struct {
	HTTP     string        `flag:"http" usage:"listen address"`
	Interval time.Duration `flag:"interval" usage:"sample interval"`
	Once     bool          `flag:"once" usage:"one sample"`
	Mounts   []string      `flag:"mounts" usage:"mounts"`
	Pool     int           `flag:"pool-size" usage:"pool"`
	Ratio    float64       `flag:"ratio" usage:"ratio"`
	Level    slog.Level    `flag:"log-level" usage:"log level"`
	Targets  []target      `flag:"-" yaml:"containers"`
}

func (s *settings) Validate() error {
	if s.Pool < 0 {
		return errors.New("pool-size must not be negative")
	}
	return nil
}

func defaults() settings {
	return settings{HTTP: "127.0.0.1:8321", Interval: 5 * time.Second, Mounts: []string{"/"}}
}

func TestLoad(t *testing.T) {
	files := map[string]string{
		"ok.yaml": "http: 0.0.0.0:9000\ninterval: 10s\nmounts: [/, /data]\n" +
			"containers:\n  - name: backend\n    health_url: http://b/health\n",
		"unknown.yaml":    "http: x\nhttpp: y\n",
		"badvalue.yaml":   "\ninterval: soon\n",
		"innerkey.yaml":   "containers:\n  - name: a\n    healthurl: x\n",
		"innerkey2.yaml":  "interval: 1s\ncontainers:\n  - name: a\n  - name: b\n    labels:\n      gpu: {max: 3, min: 1}\n",
		"innerskip.yaml":  "containers:\n  - name: a\n    timeout: 3s\n",
		"innervalue.yaml": "containers:\n  - name: a\n    labels:\n      gpu: {max: lots}\n",
		"innerok.yaml":    "containers:\n  - name: a\n    labels:\n      gpu: {max: 3}\n",
		"notmapping.yaml": "- a\n- b\n",
		"empty.yaml":      "",
		"selfref.yaml":    "config: other.yaml\n",
		"level.yaml":      "log-level: debug\n",
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(*settings)
		wantErr string
	}{
		{name: "defaults", want: func(s *settings) {}},
		{name: "flags", args: []string{"--http=:1", "--interval", "2s", "--once", "--mounts=/,/var"},
			want: func(s *settings) {
				s.HTTP = ":1"
				s.Interval = 2 * time.Second
				s.Once = true
				s.Mounts = []string{"/", "/var"}
			}},
		{name: "env", env: map[string]string{"SYSPERF_HTTP": ":2", "SYSPERF_POOL_SIZE": "30", "SYSPERF_ONCE": "true"},
			want: func(s *settings) { s.HTTP = ":2"; s.Pool = 30; s.Once = true }},
		{name: "file", args: []string{"--config", "ok.yaml"}, want: func(s *settings) {
			s.HTTP = "0.0.0.0:9000"
			s.Interval = 10 * time.Second
			s.Mounts = []string{"/", "/data"}
			s.Targets = []target{{Name: "backend", URL: "http://b/health"}}
		}},
		{name: "config from env", env: map[string]string{"SYSPERF_CONFIG": "ok.yaml"}, want: func(s *settings) {
			s.HTTP = "0.0.0.0:9000"
			s.Interval = 10 * time.Second
			s.Mounts = []string{"/", "/data"}
			s.Targets = []target{{Name: "backend", URL: "http://b/health"}}
		}},
		{name: "flag beats env beats file", args: []string{"--config=ok.yaml", "--http=:3"},
			env: map[string]string{"SYSPERF_HTTP": ":2", "SYSPERF_INTERVAL": "1m"},
			want: func(s *settings) {
				s.HTTP = ":3"
				s.Interval = time.Minute
				s.Mounts = []string{"/", "/data"}
				s.Targets = []target{{Name: "backend", URL: "http://b/health"}}
			}},
		{name: "empty file", args: []string{"--config=empty.yaml"}, want: func(s *settings) {}},
		{name: "unknown file key", args: []string{"--config=unknown.yaml"}, wantErr: `unknown.yaml line 2: unknown key "httpp"`},
		{name: "bad file value", args: []string{"--config=badvalue.yaml"}, wantErr: `line 2: key "interval": not a duration`},
		{name: "unknown inner key", args: []string{"--config=innerkey.yaml"}, wantErr: `innerkey.yaml line 3: key "containers[0].healthurl": unknown key`},
		{name: "unknown nested key", args: []string{"--config=innerkey2.yaml"}, wantErr: `innerkey2.yaml line 6: key "containers[1].labels.gpu.min": unknown key`},
		{name: "inner key tagged -", args: []string{"--config=innerskip.yaml"}, wantErr: `line 3: key "containers[0].timeout": unknown key`},
		{name: "bad inner value", args: []string{"--config=innervalue.yaml"}, wantErr: "line 4: cannot unmarshal"},
		{name: "nested file value", args: []string{"--config=innerok.yaml"}, want: func(s *settings) {
			s.Targets = []target{{Name: "a", Labels: map[string]limits{"gpu": {Max: 3}}}}
		}},
		{name: "not a mapping", args: []string{"--config=notmapping.yaml"}, wantErr: "top level must be a mapping"},
		{name: "config key in file", args: []string{"--config=selfref.yaml"}, wantErr: `"config" cannot be set`},
		{name: "missing file", args: []string{"--config=nope.yaml"}, wantErr: "config file: open nope.yaml"},
		{name: "bad flag value", args: []string{"--pool-size=many"}, wantErr: `flag --pool-size="many": not an integer`},
		{name: "negative duration", args: []string{"--interval=-1s"}, wantErr: "must not be negative"},
		{name: "bad env value", env: map[string]string{"SYSPERF_RATIO": "half"}, wantErr: `SYSPERF_RATIO="half": not a number`},
		{name: "unknown flag", args: []string{"--htp=x"}, wantErr: "flag provided but not defined: -htp"},
		{name: "stray argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
		{name: "validate", args: []string{"--pool-size=-1"}, wantErr: "config: pool-size must not be negative"},
		{name: "text value", args: []string{"--log-level=warn"}, want: func(s *settings) { s.Level = slog.LevelWarn }},
		{name: "text value from file", args: []string{"--config=level.yaml"}, want: func(s *settings) { s.Level = slog.LevelDebug }},
		{name: "bad text value", args: []string{"--log-level=loud"}, wantErr: `flag --log-level="loud": slog: level string "loud"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := defaults()
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			read := func(p string) ([]byte, error) {
				data, ok := files[p]
				if !ok {
					return nil, &fs.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
				}
				return []byte(data), nil
			}
			err := load("test", tc.args, env, read, &bytes.Buffer{}, &got)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaults()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestHelpListsEnvAndDefaults(t *testing.T) {
	var out bytes.Buffer
	s := defaults()
	err := load("agent", []string{"-h"}, func(string) (string, bool) { return "", false }, os.ReadFile, &out, &s)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("error = %v, want ErrHelp", err)
	}
	for _, want := range []string{"-interval", "SYSPERF_INTERVAL", "default 5s", "-config", "SYSPERF_CONFIG", "default INFO",
		"--interval duration\n", "--http string\n", "--once\n", "--mounts list\n", "--pool-size int\n", "--ratio number\n",
		"--log-level string\n", "--config file\n", "Only in the --config file: containers\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRejectsUnsupportedField(t *testing.T) {
	var s struct {
		M map[string]string `flag:"m"`
	}
	if err := Load("x", nil, &s); err == nil || !strings.Contains(err.Error(), "unsupported type") {
		t.Fatalf("error = %v", err)
	}
}

// agentSettings reads its file from SYSPERF_AGENT_CONFIG, as the agent does.
type agentSettings settings

func (*agentSettings) ConfigEnv() string { return "SYSPERF_AGENT_CONFIG" }

// A program with its own config variable never reads SYSPERF_CONFIG, the
// hub's: `SYSPERF_CONFIG=hub.yaml make run` must not feed the hub's keys
// to the agent.
func TestConfigEnvPerProgram(t *testing.T) {
	files := map[string]string{
		"hub.yaml":   "http: 0.0.0.0:9000\nnope: 1\n", // an unknown key: an error if read
		"agent.yaml": "interval: 10s\n",
	}
	read := func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return []byte(b), nil
		}
		return nil, fs.ErrNotExist
	}
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	a := agentSettings(defaults())
	if err := load("agent", nil, env(map[string]string{"SYSPERF_CONFIG": "hub.yaml"}), read, io.Discard, &a); err != nil {
		t.Fatalf("agent read the hub's SYSPERF_CONFIG: %v", err)
	}
	if a.HTTP != "127.0.0.1:8321" {
		t.Errorf("agent http %q", a.HTTP)
	}
	a = agentSettings(defaults())
	err := load("agent", nil, env(map[string]string{"SYSPERF_CONFIG": "hub.yaml", "SYSPERF_AGENT_CONFIG": "agent.yaml"}), read, io.Discard, &a)
	if err != nil || a.Interval != 10*time.Second {
		t.Fatalf("SYSPERF_AGENT_CONFIG: %v, interval %s", err, a.Interval)
	}
	// The hub's settings keep SYSPERF_CONFIG.
	h := defaults()
	if err := load("hub", nil, env(map[string]string{"SYSPERF_CONFIG": "hub.yaml"}), read, io.Discard, &h); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("hub with SYSPERF_CONFIG=hub.yaml: %v, want its unknown key", err)
	}
	var out bytes.Buffer
	a = agentSettings(defaults())
	if err := load("agent", []string{"-h"}, env(nil), read, &out, &a); !errors.Is(err, ErrHelp) {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "(env SYSPERF_AGENT_CONFIG)") || strings.Contains(out.String(), "SYSPERF_CONFIG") {
		t.Errorf("agent usage:\n%s", out.String())
	}
}

// --version wins before anything is read, so a broken config file or
// environment cannot hide which build is running.
func TestVersionFlag(t *testing.T) {
	s := defaults()
	env := func(k string) (string, bool) {
		if k == "SYSPERF_INTERVAL" {
			return "soon", true
		}
		return "", false
	}
	read := func(string) ([]byte, error) { return nil, fs.ErrNotExist }
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--config=missing.yaml", "--version"}} {
		if err := load("hub", args, env, read, io.Discard, &s); !errors.Is(err, ErrVersion) {
			t.Errorf("%v: error %v, want ErrVersion", args, err)
		}
	}
	if err := load("hub", nil, env, read, io.Discard, &s); err == nil || errors.Is(err, ErrVersion) {
		t.Errorf("without --version: %v", err)
	}
	var out bytes.Buffer
	_ = load("hub", []string{"-h"}, env, read, &out, &s)
	if !strings.Contains(out.String(), "  --version\n") {
		t.Errorf("usage lacks --version:\n%s", out.String())
	}
}
