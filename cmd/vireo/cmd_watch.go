package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"vireo/pkg/schema"
)

func init() {
	register(command{"watch", "print results, source events and errors as they arrive", runWatch})
}

// natsFlags adds --nats and --prefix.
type natsFlags struct {
	url, prefix string
}

func addNATSFlags(fs interface {
	StringVar(*string, string, string, string)
}) *natsFlags {
	var n natsFlags
	fs.StringVar(&n.url, "nats", envOr("VIREO_NATS_URL", nats.DefaultURL), "NATS server URL(s), comma-separated [VIREO_NATS_URL]")
	fs.StringVar(&n.prefix, "prefix", envOr("VIREO_PREFIX", schema.DefaultPrefix), "subject prefix [VIREO_PREFIX]")
	return &n
}

func (n *natsFlags) connect(name string) (*nats.Conn, schema.Subjects, error) {
	subj, err := schema.NewSubjects(n.prefix)
	if err != nil {
		return nil, subj, usagef("--prefix: %v", err)
	}
	nc, err := nats.Connect(n.url, nats.Name("vireo "+name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, subj, fmt.Errorf("connect to NATS at %s: %w", n.url, err)
	}
	return nc, subj, nil
}

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("watch", stderr)
	nf := addNATSFlags(fs)
	until := fs.String("until-end", "", "comma-separated sources: exit once each has ended and its results for every published frame have arrived")
	settle := fs.Duration("settle", 60*time.Second, "with --until-end, the longest wait for the remaining results after a source's end-of-stream")
	raw := fs.Bool("json", false, "print each message's JSON as it arrives instead of a summary")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	nc, subj, err := nf.connect("watch")
	if err != nil {
		return err
	}
	defer nc.Close()

	waiting := map[string]bool{}
	for _, s := range strings.Split(*until, ",") {
		if s = strings.TrimSpace(s); s != "" {
			waiting[s] = true
		}
	}
	msgs := make(chan *nats.Msg, 1024)
	for _, s := range []string{subj.ResultsAll(), subj.EventsAll(), subj.ErrorsAll()} {
		sub, err := nc.ChanSubscribe(s, msgs)
		if err != nil {
			return fmt.Errorf("watch: subscribe %s: %w", s, err)
		}
		defer sub.Unsubscribe()
	}
	arrowPrefix := subj.Prefix() + ".results.arrow."
	counts := map[string]int{}           // distinct results per source
	seen := map[string]map[uint64]bool{} // seqs with a result, per source
	expect := map[string]int{}           // frames published, from end-of-stream
	var settleC <-chan time.Time
	done := func() bool {
		if *until == "" {
			return false
		}
		for s := range waiting {
			if n, ok := expect[s]; !ok || counts[s] < n {
				return false
			}
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-settleC:
			fmt.Fprintf(stdout, "results per source: %v (frames published: %v; gave up waiting after --settle)\n", counts, expect)
			return fmt.Errorf("watch: results missing after %v: got %v of %v", *settle, counts, expect)
		case m := <-msgs:
			if strings.HasPrefix(m.Subject, arrowPrefix) {
				continue
			}
			if *raw {
				fmt.Fprintf(stdout, "%s %s\n", m.Subject, m.Data)
				continue
			}
			line, src, ended, seq, frames := summarize(m.Data)
			if line == "" {
				continue
			}
			fmt.Fprintln(stdout, line)
			switch {
			case ended:
				expect[src] = int(frames)
				if waiting[src] && settleC == nil {
					settleC = time.After(*settle)
				}
			case seq != nil:
				if seen[src] == nil {
					seen[src] = map[uint64]bool{}
				}
				if !seen[src][*seq] {
					seen[src][*seq] = true
					counts[src]++
				}
			}
			if done() {
				fmt.Fprintf(stdout, "results per source: %v\n", counts)
				return nil
			}
		}
	}
}

// summarize turns a result, an end-of-stream event or an error into one
// line; src is the source it concerns, ended is true for end-of-stream
// (frames: how many it published), and seq is set for a result.
func summarize(data []byte) (line, src string, ended bool, seq *uint64, frames uint64) {
	var probe struct {
		Event string `json:"event"`
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return "", "", false, nil, 0
	}
	switch {
	case probe.Event == schema.EventEndOfStream:
		var e schema.EndOfStream
		_ = json.Unmarshal(data, &e)
		return fmt.Sprintf("%-12s end of stream: %s, %d frames, %d dropped %s", e.Source, e.Reason, e.Frames, e.Dropped, e.Detail), e.Source, true, nil, e.Frames
	case probe.Error != "":
		var e schema.Error
		_ = json.Unmarshal(data, &e)
		return fmt.Sprintf("%-12s error: %s (%s)", e.Source, e.Error, e.Reason), e.Source, false, nil, 0
	}
	var r schema.Result
	if json.Unmarshal(data, &r) != nil {
		return "", "", false, nil, 0
	}
	b := fmt.Sprintf("%-12s #%-5d %s@%s %6.1fms ", r.Source, r.Seq, r.Model, r.ModelVersion, r.LatencyMS)
	switch {
	case len(r.ClassFraction) > 0:
		var parts []string
		for i, f := range r.ClassFraction {
			if i < len(r.Classes) && f > 0 {
				parts = append(parts, fmt.Sprintf("%s %.1f%%", r.Classes[i], 100*f))
			}
		}
		b += strings.Join(parts, ", ")
	case len(r.Points) > 0:
		var parts []string
		for _, p := range r.Points {
			parts = append(parts, fmt.Sprintf("(%.0f,%.0f)", p.X, p.Y))
		}
		b += "points " + strings.Join(parts, " ")
	default:
		labels := append([]string(nil), r.Labels...)
		sort.Strings(labels)
		var parts []string
		for _, l := range labels {
			parts = append(parts, fmt.Sprintf("%s %.2f", l, r.Scores[l]))
		}
		b += strings.Join(parts, ", ")
	}
	return b, r.Source, false, &r.Seq, 0
}
