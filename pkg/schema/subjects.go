package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultPrefix is the first subject token(s) of every Vireo subject.
const DefaultPrefix = "vireo"

// NATS headers of the public contract (JetStream's own Nats-Msg-Id is
// jetstream.MsgIDHeader; Vireo sets it to MsgID(source, seq)).
const (
	// HeaderModel on <p>.ingest.image.<source> picks the model.
	HeaderModel = "Vireo-Model"
	// HeaderSchemaVersion carries Version on Arrow messages.
	HeaderSchemaVersion = "Vireo-Schema-Version"
	// HeaderReply on a frame batch message of one frame asks infer to also
	// publish that frame's JSON Result (or JSON Error) to this subject, so a
	// request/reply caller (ingest's predict) gets its answer through the
	// same inference path as every stream.
	HeaderReply = "Vireo-Reply"
)

// Subjects builds Vireo's NATS subject names under one prefix. The zero value
// is not usable: call NewSubjects. Every method that takes a name validates
// it (ValidateName) so a name can never inject '.', '*' or '>' into a subject.
//
//	<p>.ingest.image.<source>      raw JPEG/PNG in (header Vireo-Model)
//	<p>.frames.<model>             Arrow frame batches (FRAMES stream)
//	<p>.results.<model>.<source>   JSON Result per frame (RESULTS stream)
//	<p>.results.arrow.<model>      Arrow result batches (RESULTS stream)
//	<p>.corrections.<model>        JSON Correction (CORRECTIONS stream)
//	<p>.kept.<model>.<source>.<seq> one-frame Arrow batch (FRAMES_KEEP stream)
//	<p>.errors.<service>           JSON Error
//	<p>.events.<source>            JSON EndOfStream and other source events
type Subjects struct {
	prefix string
}

// NewSubjects returns the subject builder for prefix ("" means
// DefaultPrefix). A prefix is one or more tokens separated by '.', each a
// valid name.
func NewSubjects(prefix string) (Subjects, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	for _, tok := range strings.Split(prefix, ".") {
		if err := ValidateName("subject prefix token", tok); err != nil {
			return Subjects{}, fmt.Errorf("prefix %q: %w", prefix, err)
		}
	}
	return Subjects{prefix: prefix}, nil
}

// Prefix returns the prefix.
func (s Subjects) Prefix() string { return s.prefix }

func (s Subjects) join(tokens ...string) string {
	return s.prefix + "." + strings.Join(tokens, ".")
}

// IngestImage is <p>.ingest.image.<source>.
func (s Subjects) IngestImage(source string) (string, error) {
	if err := ValidateSource(source); err != nil {
		return "", err
	}
	return s.join("ingest", "image", source), nil
}

// IngestImageAll matches every IngestImage subject.
func (s Subjects) IngestImageAll() string { return s.join("ingest", "image", "*") }

// Frames is <p>.frames.<model>.
func (s Subjects) Frames(model string) (string, error) {
	if err := ValidateModel(model); err != nil {
		return "", err
	}
	return s.join("frames", model), nil
}

// FramesAll matches every Frames subject.
func (s Subjects) FramesAll() string { return s.join("frames", "*") }

// Results is <p>.results.<model>.<source>.
func (s Subjects) Results(model, source string) (string, error) {
	if err := ValidateModel(model); err != nil {
		return "", err
	}
	if err := ValidateSource(source); err != nil {
		return "", err
	}
	return s.join("results", model, source), nil
}

// ResultsArrow is <p>.results.arrow.<model>.
func (s Subjects) ResultsArrow(model string) (string, error) {
	if err := ValidateModel(model); err != nil {
		return "", err
	}
	return s.join("results", "arrow", model), nil
}

// ResultsAll matches every Results and ResultsArrow subject.
func (s Subjects) ResultsAll() string { return s.join("results", ">") }

// Corrections is <p>.corrections.<model>.
func (s Subjects) Corrections(model string) (string, error) {
	if err := ValidateModel(model); err != nil {
		return "", err
	}
	return s.join("corrections", model), nil
}

// CorrectionsAll matches every Corrections subject.
func (s Subjects) CorrectionsAll() string { return s.join("corrections", "*") }

// Kept is <p>.kept.<model>.<source>.<seq>: the one frame that produced a
// result, kept so a correction naming (source, seq) can find its pixels.
func (s Subjects) Kept(model, source string, seq uint64) (string, error) {
	if err := ValidateModel(model); err != nil {
		return "", err
	}
	if err := ValidateSource(source); err != nil {
		return "", err
	}
	return s.join("kept", model, source, strconv.FormatUint(seq, 10)), nil
}

// KeptAll matches every Kept subject.
func (s Subjects) KeptAll() string { return s.join("kept", ">") }

// Errors is <p>.errors.<service>.
func (s Subjects) Errors(service string) (string, error) {
	if err := ValidateName("service", service); err != nil {
		return "", err
	}
	return s.join("errors", service), nil
}

// ErrorsAll matches every Errors subject.
func (s Subjects) ErrorsAll() string { return s.join("errors", "*") }

// Events is <p>.events.<source>: EndOfStream and other per-source events.
func (s Subjects) Events(source string) (string, error) {
	if err := ValidateSource(source); err != nil {
		return "", err
	}
	return s.join("events", source), nil
}

// EventsAll matches every Events subject.
func (s Subjects) EventsAll() string { return s.join("events", "*") }

// StreamName returns the JetStream stream (or bucket) name for base:
// base itself under DefaultPrefix ("FRAMES"), else the prefix upper-cased
// with '.' as '_' and '_' + base ("TEST_FRAMES" for prefix "test"), so
// deployments with different prefixes can share a server.
func (s Subjects) StreamName(base string) string {
	if s.prefix == DefaultPrefix || s.prefix == "" {
		return base
	}
	return strings.ToUpper(strings.ReplaceAll(s.prefix, ".", "_")) + "_" + base
}

// MsgID is the JetStream Nats-Msg-Id of a frame or result: "<source>/<seq>".
// Publishing the same frame twice inside the stream's duplicate window is
// then stored once.
func MsgID(source string, seq uint64) (string, error) {
	if err := ValidateSource(source); err != nil {
		return "", err
	}
	return source + "/" + strconv.FormatUint(seq, 10), nil
}

// ParseMsgID splits a MsgID back into source and seq.
func ParseMsgID(id string) (source string, seq uint64, err error) {
	src, num, ok := strings.Cut(id, "/")
	if !ok {
		return "", 0, fmt.Errorf("%w: msg id %q (want <source>/<seq>)", ErrInvalid, id)
	}
	if err := ValidateSource(src); err != nil {
		return "", 0, err
	}
	seq, err = strconv.ParseUint(num, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: msg id %q: seq (got=%q, want a decimal uint64)", ErrInvalid, id, num)
	}
	return src, seq, nil
}
