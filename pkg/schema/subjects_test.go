package schema

import (
	"errors"
	"strings"
	"testing"
)

func TestSubjects(t *testing.T) {
	s, err := NewSubjects("")
	if err != nil {
		t.Fatal(err)
	}
	must := func(subj string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return subj
	}
	got := []string{
		must(s.IngestImage("cam0")), s.IngestImageAll(),
		must(s.Frames("planet")), s.FramesAll(),
		must(s.Results("planet", "cam0")), must(s.ResultsArrow("planet")), s.ResultsAll(),
		must(s.Corrections("planet")), s.CorrectionsAll(),
		must(s.Kept("planet", "cam0", 42)), s.KeptAll(),
		must(s.Errors("infer")), s.ErrorsAll(),
		must(s.Events("cam0")), s.EventsAll(),
	}
	want := []string{
		"vireo.ingest.image.cam0", "vireo.ingest.image.*",
		"vireo.frames.planet", "vireo.frames.*",
		"vireo.results.planet.cam0", "vireo.results.arrow.planet", "vireo.results.>",
		"vireo.corrections.planet", "vireo.corrections.*",
		"vireo.kept.planet.cam0.42", "vireo.kept.>",
		"vireo.errors.infer", "vireo.errors.*",
		"vireo.events.cam0", "vireo.events.*",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("subjects:\n got %v\nwant %v", got, want)
	}
	if s.StreamName("FRAMES") != "FRAMES" {
		t.Fatalf("default stream name = %q", s.StreamName("FRAMES"))
	}
	p, err := NewSubjects("acme.prod")
	if err != nil {
		t.Fatal(err)
	}
	if got := must(p.Frames("m")); got != "acme.prod.frames.m" {
		t.Fatalf("prefixed subject = %q", got)
	}
	if got := p.StreamName("FRAMES"); got != "ACME_PROD_FRAMES" {
		t.Fatalf("prefixed stream name = %q, want ACME_PROD_FRAMES", got)
	}
}

func TestNameValidation(t *testing.T) {
	s, _ := NewSubjects("")
	bad := []struct{ name, msg string }{
		{"", "is empty"},
		{"a.b", `has '.' at byte 1`},
		{"a*", `has '*'`},
		{">", `has '>'`},
		{"a b", `has ' '`},
		{"tab\t", `has '\t'`},
		{"é", "at byte 0"},
		{strings.Repeat("x", MaxNameLen+1), "got=65 bytes, want<=64"},
	}
	for _, b := range bad {
		_, err := s.IngestImage(b.name)
		if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("IngestImage(%q) error = %v, want ErrInvalidName containing %q", b.name, err, b.msg)
		}
	}
	if _, err := s.Frames("arrow"); !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("Frames(arrow) error = %v, want reserved", err)
	}
	if _, err := NewSubjects("vireo..x"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("NewSubjects with an empty token: err = %v", err)
	}
	if _, err := NewSubjects("vireo.>"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("NewSubjects with a wildcard: err = %v", err)
	}
	for _, ok := range []string{"cam0", "Door-2", "a_b", strings.Repeat("x", MaxNameLen)} {
		if err := ValidateSource(ok); err != nil {
			t.Errorf("ValidateSource(%q) = %v", ok, err)
		}
	}
}

func TestMsgID(t *testing.T) {
	id, err := MsgID("cam0", 18446744073709551615)
	if err != nil || id != "cam0/18446744073709551615" {
		t.Fatalf("MsgID = %q, %v", id, err)
	}
	src, seq, err := ParseMsgID(id)
	if err != nil || src != "cam0" || seq != 18446744073709551615 {
		t.Fatalf("ParseMsgID = %q, %d, %v", src, seq, err)
	}
	for _, bad := range []string{"cam0", "cam0/", "cam0/-1", "a.b/1", "/1", "cam0/1/2"} {
		if _, _, err := ParseMsgID(bad); err == nil {
			t.Errorf("ParseMsgID(%q) succeeded", bad)
		}
	}
	if _, err := MsgID("a/b", 1); err == nil {
		t.Error("MsgID with '/' in the source succeeded")
	}
}
