package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/model"
	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
)

func init() {
	register(command{"models", "the model store: list | push DIR | versions MODEL | rollback MODEL [--to V] | retrain MODEL", runModels})
}

const modelsUsage = `usage: vireo models <command> [flags]
  list                    models with their serving version
  push [--if-missing] [--no-promote] [--name N] DIR
                          push a model directory (model.onnx + manifest.json,
                          and the training plots losses.png and lr.png when
                          there), or every such directory inside DIR, and
                          make it serve
  versions MODEL          stored versions, their metrics and when each served
  rollback MODEL [--to V] serve the previous (or the named) version again
  retrain [--status] [--no-wait] MODEL
                          start a retrain run now and follow it with a
                          progress bar until the gate decides (--status:
                          only print the retrain service's status)
common flags: --nats URL [VIREO_NATS_URL], --prefix P, --replicas N [VIREO_REPLICAS], --json`

// parseInterleaved parses flags that may come before or after positional
// arguments and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(envErrors) > 0 {
		return nil, usagef("%s: %v", fs.Name(), envErrors[0])
	}
	return pos, nil
}

func runModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, modelsUsage)
		if len(args) == 0 {
			return usagef("models: a command is required")
		}
		return flag.ErrHelp
	}
	sub := args[0]
	fs := newFlagSet("models "+sub, stderr)
	nf := addNATSFlags(fs)
	replicas := fs.Int("replicas", envInt("VIREO_REPLICAS", 1), "replicas of the buckets (and streams, for push) it creates [VIREO_REPLICAS]")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	defTimeout := time.Minute
	if sub == "retrain" {
		defTimeout = time.Hour // a run fine-tunes a model
	}
	timeout := fs.Duration("timeout", defTimeout, "bound on the whole command")
	var ifMissing, noPromote, statusOnly, noWait *bool
	var name, to *string
	want := 0
	switch sub {
	case "list":
	case "push":
		ifMissing = fs.Bool("if-missing", false, "skip a model that already has a serving version")
		noPromote = fs.Bool("no-promote", false, "store the version without making it serve")
		name = fs.String("name", "", "model name (default: the manifest's name; one directory only)")
		want = 1
	case "versions":
		want = 1
	case "rollback":
		to = fs.String("to", "", "version to serve (default: the one that served before the current)")
		want = 1
	case "retrain":
		statusOnly = fs.Bool("status", false, "print the retrain service's status of MODEL and start nothing")
		noWait = fs.Bool("no-wait", false, "start the run and return without following it")
		want = 1
	default:
		fmt.Fprintln(stderr, modelsUsage)
		return usagef("models: unknown command %q", sub)
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != want {
		return usagef("models %s: %d arguments (want %d)\n%s", sub, len(pos), want, modelsUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	nc, subj, err := nf.connect("models")
	if err != nil {
		return err
	}
	defer nc.Close()
	if sub == "retrain" {
		return modelsRetrain(ctx, nc, subj.Prefix(), pos[0], *statusOnly, *noWait, *asJSON, stdout, stderr)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	if sub == "push" { // the first thing a cluster runs: create everything
		if err := schema.Provision(ctx, js, subj, *replicas, 0); err != nil {
			return fmt.Errorf("models: %w", err)
		}
	}
	store, err := modelstore.Open(ctx, js, modelstore.Options{Prefix: subj.Prefix(), Replicas: *replicas})
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	switch sub {
	case "list":
		return modelsList(ctx, store, stdout, *asJSON)
	case "push":
		return modelsPush(ctx, store, pos[0], *name, *ifMissing, !*noPromote, stdout, *asJSON)
	case "versions":
		return modelsVersions(ctx, store, pos[0], stdout, *asJSON)
	default:
		p, err := store.Rollback(ctx, pos[0], *to)
		if err != nil {
			return fmt.Errorf("models rollback: %w", err)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(p)
		}
		fmt.Fprintf(stdout, "%s: now serving %s (was %s)\n", p.Model, p.Version, p.Previous)
		return nil
	}
}

type modelRow struct {
	Model    string `json:"model"`
	Serving  string `json:"serving,omitempty"`
	Task     string `json:"task,omitempty"`
	Since    string `json:"since,omitempty"`
	Versions int    `json:"versions"`
}

func modelsList(ctx context.Context, store *modelstore.Store, stdout io.Writer, asJSON bool) error {
	names, err := store.List(ctx)
	if err != nil {
		return fmt.Errorf("models list: %w", err)
	}
	rows := []modelRow{}
	for _, n := range names {
		row := modelRow{Model: n}
		if vs, err := store.Versions(ctx, n); err == nil {
			row.Versions = len(vs)
		}
		p, m, err := store.ServingManifest(ctx, n)
		switch {
		case errors.Is(err, modelstore.ErrNotFound):
		case err != nil:
			return fmt.Errorf("models list: %s: %w", n, err)
		default:
			row.Serving, row.Task, row.Since = p.Version, string(m.Task), p.At.Format(time.RFC3339)
		}
		rows = append(rows, row)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tSERVING\tTASK\tSINCE\tVERSIONS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.Model, dash(r.Serving), dash(r.Task), dash(r.Since), r.Versions)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// modelDirs returns dir when it holds a manifest, else its subdirectories
// that do (sorted).
func modelDirs(dir string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, model.ManifestFile)); err == nil {
		return []string{dir}, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("models push: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), model.ManifestFile)); err == nil {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("models push: %s holds no %s, nor do its subdirectories", dir, model.ManifestFile)
	}
	sort.Strings(out)
	return out, nil
}

type pushRow struct {
	Model   string `json:"model"`
	Version string `json:"version,omitempty"`
	Serving bool   `json:"serving"`
	Skipped string `json:"skipped,omitempty"`
}

func modelsPush(ctx context.Context, store *modelstore.Store, dir, name string, ifMissing, promote bool, stdout io.Writer, asJSON bool) error {
	dirs, err := modelDirs(dir)
	if err != nil {
		return err
	}
	if name != "" && len(dirs) != 1 {
		return usagef("models push: --name with %d model directories (want one)", len(dirs))
	}
	var rows []pushRow
	for _, d := range dirs {
		m, onnxBytes, err := model.Load(d)
		if err != nil {
			return fmt.Errorf("models push: %w", err)
		}
		n := m.Name
		if name != "" {
			n = name
		}
		if ifMissing {
			if p, err := store.Serving(ctx, n); err == nil {
				rows = append(rows, pushRow{Model: n, Version: p.Version, Serving: true, Skipped: "already serving"})
				continue
			} else if !errors.Is(err, modelstore.ErrNotFound) {
				return fmt.Errorf("models push: %w", err)
			}
		}
		files, err := plotFiles(d)
		if err != nil {
			return fmt.Errorf("models push: %w", err)
		}
		v, err := store.Push(ctx, n, onnxBytes, m, files...)
		if err != nil {
			return fmt.Errorf("models push %s: %w", d, err)
		}
		row := pushRow{Model: n, Version: v}
		if promote {
			if _, err := store.Promote(ctx, n, v, "pushed from "+filepath.Base(d)); err != nil {
				return fmt.Errorf("models push: %w", err)
			}
			row.Serving = true
		}
		rows = append(rows, row)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(rows)
	}
	for _, r := range rows {
		switch {
		case r.Skipped != "":
			fmt.Fprintf(stdout, "%s: skipped (%s %s)\n", r.Model, r.Skipped, r.Version)
		case r.Serving:
			fmt.Fprintf(stdout, "%s: pushed %s, now serving\n", r.Model, r.Version)
		default:
			fmt.Fprintf(stdout, "%s: pushed %s (not serving)\n", r.Model, r.Version)
		}
	}
	return nil
}

// plotFiles reads the training plots `vireo train` writes beside the
// model (losses.png, lr.png), those that are there, as the version's
// extra files: each must be a PNG of at most modelstore.MaxFileBytes.
func plotFiles(dir string) ([]modelstore.File, error) {
	var out []modelstore.File
	for _, name := range []string{modelstore.LossPlotObject, modelstore.LRPlotObject} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() || fi.Size() > modelstore.MaxFileBytes {
			return nil, fmt.Errorf("%s: not a regular file of at most %d bytes (got %d bytes, mode %v)", p, modelstore.MaxFileBytes, fi.Size(), fi.Mode())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			return nil, fmt.Errorf("%s is not a PNG", p)
		}
		out = append(out, modelstore.File{Name: name, Data: b})
	}
	return out, nil
}

func modelsVersions(ctx context.Context, store *modelstore.Store, name string, stdout io.Writer, asJSON bool) error {
	vs, err := store.Versions(ctx, name)
	if err != nil {
		return fmt.Errorf("models versions: %w", err)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(vs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSERVING\tCREATED\tPARENT\tARCH\tMETRICS\tPLOTS\tSERVED")
	for _, v := range vs {
		serving := ""
		if v.Serving {
			serving = "*"
		}
		var metrics []string
		for _, k := range sortedKeys(v.Manifest.Metrics) {
			metrics = append(metrics, fmt.Sprintf("%s=%.4g", k, v.Manifest.Metrics[k]))
		}
		var served []string
		for _, s := range v.Served {
			until := "now"
			if !s.Until.IsZero() {
				until = s.Until.Format(time.RFC3339)
			}
			served = append(served, fmt.Sprintf("%s..%s (%s)", s.From.Format(time.RFC3339), until, s.Reason))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Version, dash(serving), v.Manifest.CreatedAt.Format(time.RFC3339),
			dash(v.Manifest.ParentVersion), v.Manifest.Arch, dash(strings.Join(metrics, " ")), dash(strings.Join(v.Files, ",")), dash(strings.Join(served, "; ")))
	}
	return tw.Flush()
}
