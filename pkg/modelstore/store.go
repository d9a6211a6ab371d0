package modelstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/model"
	"vireo/pkg/onnx"
	"vireo/pkg/schema"
)

// Errors. Each is wrapped with details (%w) including got/want.
var (
	// ErrNotFound: the model, version or serving pointer does not exist.
	ErrNotFound = errors.New("modelstore: not found")
	// ErrInvalid: a name, manifest or ONNX file is not acceptable.
	ErrInvalid = errors.New("modelstore: invalid")
	// ErrDigest: stored ONNX bytes do not match their manifest's digest.
	ErrDigest = errors.New("modelstore: digest mismatch")
	// ErrNoPrevious: Rollback to the previous version, and there is none.
	ErrNoPrevious = errors.New("modelstore: no previous version")
)

// Object names inside a version's folder.
const (
	ONNXObject     = model.ONNXFile     // "model.onnx"
	ManifestObject = model.ManifestFile // "manifest.json"
)

// Extra files a version may carry beside model.onnx and manifest.json:
// the training plots `vireo train` writes (pkg/train's LossPlotFile and
// LRPlotFile) and the retrain service renders for its candidates.
const (
	LossPlotObject = "losses.png"
	LRPlotObject   = "lr.png"
)

// Bounds on a version's extra files.
const (
	MaxFiles       = 16      // extra files per version
	MaxFileBytes   = 8 << 20 // bytes per extra file
	MaxFileNameLen = 64      // bytes per extra file name
)

// File is an extra file of a version (Push), stored as the object
// "<model>/<version>/<name>".
type File struct {
	Name string
	Data []byte
}

// MaxReasonLen bounds Pointer.Reason.
const MaxReasonLen = 1024

// Options configure Open. The zero value is usable.
type Options struct {
	// Prefix is the subject prefix whose bucket names are used (""
	// means schema.DefaultPrefix).
	Prefix string
	// Replicas of the buckets when Open creates them (0 means 1).
	Replicas int
	// Timeout bounds each call whose ctx has no deadline (0 means 30 s).
	Timeout time.Duration
}

func (o *Options) setDefaults() {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
}

// Validate reports an unusable option (after defaults).
func (o Options) Validate() error {
	if o.Replicas < 1 || o.Replicas > 5 {
		return fmt.Errorf("%w: replicas (got=%d, want 1..5)", ErrInvalid, o.Replicas)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("%w: timeout (got=%v, want>=0)", ErrInvalid, o.Timeout)
	}
	_, err := schema.NewSubjects(o.Prefix)
	return err
}

// Pointer is the value of a model's KV key: which version serves, since
// when and why. The KV history of the key is the list of past Pointers.
type Pointer struct {
	Model    string    `json:"model"`
	Version  string    `json:"version"`
	Previous string    `json:"previous,omitempty"` // the version that served before
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	// Revision is the KV revision of this pointer (set when read, not
	// stored).
	Revision uint64 `json:"-"`
}

// Store is the model store. Use Open.
type Store struct {
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	obj     jetstream.ObjectStore
	timeout time.Duration
	now     func() time.Time
}

// Open returns the store under opts.Prefix, creating the MODELS KV bucket
// and the MODEL_FILES object store when they are missing (existing buckets
// are used as they are: schema.Provision owns their configs).
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	subj, _ := schema.NewSubjects(opts.Prefix)
	s := &Store{js: js, timeout: opts.Timeout, now: time.Now}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	kvCfg := subj.ModelsKV(opts.Replicas)
	kv, err := js.KeyValue(ctx, kvCfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, kvCfg)
		if errors.Is(err, jetstream.ErrBucketExists) { // created concurrently
			kv, err = js.KeyValue(ctx, kvCfg.Bucket)
		}
	}
	if err == nil {
		err = kvAnswers(ctx, kv)
	}
	if err != nil {
		return nil, fmt.Errorf("modelstore: open KV %s: %w", kvCfg.Bucket, err)
	}
	objCfg := subj.ModelFilesStore(opts.Replicas)
	obj, err := js.ObjectStore(ctx, objCfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obj, err = js.CreateObjectStore(ctx, objCfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			obj, err = js.ObjectStore(ctx, objCfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("modelstore: open object store %s: %w", objCfg.Bucket, err)
	}
	s.kv, s.obj = kv, obj
	return s, nil
}

// kvAnswers waits until kv's stream answers a read. A bucket just created
// with replicas has no stream leader for a moment, and a read (a direct
// get, which the jetstream client does not retry) then fails with no
// responders: the 3-node cluster test saw `vireo models push` fail so,
// right after it created the bucket.
func kvAnswers(ctx context.Context, kv jetstream.KeyValue) error {
	for {
		_, err := kv.Get(ctx, "probe")
		if err == nil || errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if !errors.Is(err, nats.ErrNoResponders) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (the bucket's stream never answered: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// withTimeout adds the store's timeout to a ctx without a deadline.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

func checkModel(name string) error {
	if err := schema.ValidateModel(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// checkVersion accepts the versions Push makes and any name usable as an
// object path element and subject-safe token.
func checkVersion(v string) error {
	if err := schema.ValidateName("version", v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// checkFileName accepts an extra file's name: 1..MaxFileNameLen bytes of
// [A-Za-z0-9_.-], not starting with '.', and not one of the version's own
// objects.
func checkFileName(name string) error {
	if name == "" || len(name) > MaxFileNameLen {
		return fmt.Errorf("%w: file name length (got=%d, want 1..%d)", ErrInvalid, len(name), MaxFileNameLen)
	}
	if name == ONNXObject || name == ManifestObject {
		return fmt.Errorf("%w: file name %q is the version's own object (want another name)", ErrInvalid, name)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w: file name %q starts with '.'", ErrInvalid, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%w: file name %q has %q at byte %d (want only [A-Za-z0-9_.-])", ErrInvalid, name, c, i)
		}
	}
	return nil
}

func checkFiles(files []File) error {
	if len(files) > MaxFiles {
		return fmt.Errorf("%w: %d extra files (want<=%d)", ErrInvalid, len(files), MaxFiles)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if err := checkFileName(f.Name); err != nil {
			return err
		}
		if seen[f.Name] {
			return fmt.Errorf("%w: extra file %q given twice", ErrInvalid, f.Name)
		}
		seen[f.Name] = true
		if len(f.Data) == 0 || len(f.Data) > MaxFileBytes {
			return fmt.Errorf("%w: extra file %q size (got=%d bytes, want 1..%d)", ErrInvalid, f.Name, len(f.Data), MaxFileBytes)
		}
	}
	return nil
}

func objectName(modelName, version, file string) string {
	return modelName + "/" + version + "/" + file
}

func counterKey(modelName string) string { return modelName + ".next" }

// FormatVersion is the version Push assigns for counter n (n >= 1):
// "v0001".."v9999", then "v10000"; FormatVersion(n) sorts before
// FormatVersion(n+1) as a string while n < 10^4, and by length after.
func FormatVersion(n uint64) string { return fmt.Sprintf("v%04d", n) }

// CompareVersions orders versions made by Push: by length, then as
// strings (so "v9999" < "v10000"). Other names compare as strings after
// Push's.
func CompareVersions(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// Push validates and stores a new version of modelName and returns its
// version. The manifest gets Name = modelName, the assigned Version and
// the ONNX digest; it must validate (model.Manifest.Validate) and the ONNX
// bytes must decode and agree with it (model.CheckGraph). files are
// optional extra objects of the version (the training plots
// LossPlotObject and LRPlotObject, at most MaxFiles of at most
// MaxFileBytes each), stored before the manifest. Push does not change
// the serving version (see Promote).
func (s *Store) Push(ctx context.Context, modelName string, onnxBytes []byte, m model.Manifest, files ...File) (string, error) {
	if err := checkModel(modelName); err != nil {
		return "", err
	}
	if err := checkFiles(files); err != nil {
		return "", fmt.Errorf("model %s: %w", modelName, err)
	}
	if len(onnxBytes) == 0 {
		return "", fmt.Errorf("%w: model %s: empty ONNX bytes", ErrInvalid, modelName)
	}
	om, err := onnx.Decode(onnxBytes)
	if err != nil {
		return "", fmt.Errorf("%w: model %s: %w", ErrInvalid, modelName, err)
	}
	m.SetDefaults()
	m.Name = modelName
	m.Version = "v0" // placeholder that validates; replaced below
	m.ModelDigest = model.Digest(onnxBytes)
	if err := m.Validate(); err != nil {
		return "", fmt.Errorf("%w: model %s: %w", ErrInvalid, modelName, err)
	}
	if err := model.CheckGraph(m, om.Graph); err != nil {
		return "", fmt.Errorf("%w: model %s: ONNX and manifest disagree: %w", ErrInvalid, modelName, err)
	}
	if m.ParentVersion != "" {
		if err := checkVersion(m.ParentVersion); err != nil {
			return "", fmt.Errorf("model %s: parent_version: %w", modelName, err)
		}
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	version, err := s.nextVersion(ctx, modelName)
	if err != nil {
		return "", err
	}
	if m.ParentVersion == version {
		return "", fmt.Errorf("%w: model %s: parent_version %q is the new version", ErrInvalid, modelName, version)
	}
	m.Version = version
	js, err := model.Marshal(m)
	if err != nil {
		return "", err
	}
	if _, err := s.obj.PutBytes(ctx, objectName(modelName, version, ONNXObject), onnxBytes); err != nil {
		return "", fmt.Errorf("modelstore: put %s %s: %w", modelName, version, err)
	}
	for _, f := range files {
		if _, err := s.obj.PutBytes(ctx, objectName(modelName, version, f.Name), f.Data); err != nil {
			return "", fmt.Errorf("modelstore: put %s %s %s: %w", modelName, version, f.Name, err)
		}
	}
	if _, err := s.obj.PutBytes(ctx, objectName(modelName, version, ManifestObject), js); err != nil {
		return "", fmt.Errorf("modelstore: put %s %s manifest: %w", modelName, version, err)
	}
	return version, nil
}

// nextVersion advances the model's counter with compare-and-set and skips
// any number whose manifest already exists (a counter lost or reset).
func (s *Store) nextVersion(ctx context.Context, modelName string) (string, error) {
	key := counterKey(modelName)
	for attempt := 0; attempt < 100; attempt++ {
		var n, rev uint64
		e, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return "", fmt.Errorf("modelstore: version counter of %s: %w", modelName, err)
		default:
			rev = e.Revision()
			if n, err = strconv.ParseUint(string(e.Value()), 10, 64); err != nil {
				return "", fmt.Errorf("modelstore: version counter of %s: %q is not a number", modelName, e.Value())
			}
		}
		n++
		val := []byte(strconv.FormatUint(n, 10))
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, val)
		} else {
			_, err = s.kv.Update(ctx, key, val, rev)
		}
		if err != nil {
			if isConflict(err) {
				continue // another Push took n
			}
			return "", fmt.Errorf("modelstore: version counter of %s: %w", modelName, err)
		}
		v := FormatVersion(n)
		_, err = s.obj.GetInfo(ctx, objectName(modelName, v, ManifestObject))
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return v, nil
		}
		if err != nil {
			return "", fmt.Errorf("modelstore: check %s %s: %w", modelName, v, err)
		}
	}
	return "", fmt.Errorf("modelstore: version counter of %s: too many concurrent pushes", modelName)
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// Manifest returns a stored version's manifest (without reading the ONNX
// bytes).
func (s *Store) Manifest(ctx context.Context, modelName, version string) (model.Manifest, error) {
	if err := checkModel(modelName); err != nil {
		return model.Manifest{}, err
	}
	if err := checkVersion(version); err != nil {
		return model.Manifest{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return s.manifest(ctx, modelName, version)
}

func (s *Store) manifest(ctx context.Context, modelName, version string) (model.Manifest, error) {
	b, err := s.obj.GetBytes(ctx, objectName(modelName, version, ManifestObject))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return model.Manifest{}, fmt.Errorf("%w: model %s version %s", ErrNotFound, modelName, version)
	}
	if err != nil {
		return model.Manifest{}, fmt.Errorf("modelstore: get %s %s manifest: %w", modelName, version, err)
	}
	m, err := model.Unmarshal(b)
	if err != nil {
		return model.Manifest{}, fmt.Errorf("modelstore: %s %s manifest: %w", modelName, version, err)
	}
	if m.Name != modelName || m.Version != version {
		return model.Manifest{}, fmt.Errorf("%w: %s/%s holds the manifest of (got=%s/%s, want=%s/%s)", ErrInvalid, modelName, version, m.Name, m.Version, modelName, version)
	}
	return m, nil
}

// File returns an extra file of a stored version (see Push); ErrNotFound
// when the version has no file of that name.
func (s *Store) File(ctx context.Context, modelName, version, name string) ([]byte, error) {
	if err := checkModel(modelName); err != nil {
		return nil, err
	}
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	if err := checkFileName(name); err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	b, err := s.obj.GetBytes(ctx, objectName(modelName, version, name))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: model %s version %s has no file %s", ErrNotFound, modelName, version, name)
	}
	if err != nil {
		return nil, fmt.Errorf("modelstore: get %s %s %s: %w", modelName, version, name, err)
	}
	return b, nil
}

// Get returns a stored version's ONNX bytes and manifest, the bytes
// checked against the manifest's digest (ErrDigest).
func (s *Store) Get(ctx context.Context, modelName, version string) ([]byte, model.Manifest, error) {
	m, err := s.Manifest(ctx, modelName, version)
	if err != nil {
		return nil, model.Manifest{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	b, err := s.obj.GetBytes(ctx, objectName(modelName, version, ONNXObject))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, model.Manifest{}, fmt.Errorf("%w: model %s version %s: %s", ErrNotFound, modelName, version, ONNXObject)
	}
	if err != nil {
		return nil, model.Manifest{}, fmt.Errorf("modelstore: get %s %s: %w", modelName, version, err)
	}
	if got := model.Digest(b); m.ModelDigest != "" && got != m.ModelDigest {
		return nil, model.Manifest{}, fmt.Errorf("%w: %s %s %s (got=%s, want=%s)", ErrDigest, modelName, version, ONNXObject, got, m.ModelDigest)
	}
	return b, m, nil
}

func decodePointer(e jetstream.KeyValueEntry) (Pointer, error) {
	var p Pointer
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return Pointer{}, fmt.Errorf("%w: pointer %s revision %d: %v", ErrInvalid, e.Key(), e.Revision(), err)
	}
	if p.Model != e.Key() || checkVersion(p.Version) != nil {
		return Pointer{}, fmt.Errorf("%w: pointer %s revision %d (got model=%q version=%q, want model=%q and a version)", ErrInvalid, e.Key(), e.Revision(), p.Model, p.Version, e.Key())
	}
	p.Revision = e.Revision()
	return p, nil
}

// Serving returns the pointer to modelName's serving version (ErrNotFound
// when none was ever promoted).
func (s *Store) Serving(ctx context.Context, modelName string) (Pointer, error) {
	if err := checkModel(modelName); err != nil {
		return Pointer{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return s.serving(ctx, modelName)
}

func (s *Store) serving(ctx context.Context, modelName string) (Pointer, error) {
	e, err := s.kv.Get(ctx, modelName)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Pointer{}, fmt.Errorf("%w: model %s has no serving version", ErrNotFound, modelName)
	}
	if err != nil {
		return Pointer{}, fmt.Errorf("modelstore: serving %s: %w", modelName, err)
	}
	return decodePointer(e)
}

// ServingManifest returns the serving pointer and that version's manifest
// (what the frames service needs to know a model's input size).
func (s *Store) ServingManifest(ctx context.Context, modelName string) (Pointer, model.Manifest, error) {
	p, err := s.Serving(ctx, modelName)
	if err != nil {
		return Pointer{}, model.Manifest{}, err
	}
	m, err := s.Manifest(ctx, modelName, p.Version)
	return p, m, err
}

// Promote makes version serve modelName, recording reason (required, at
// most MaxReasonLen bytes) and the version it replaces. The version must
// be stored. Promoting the version already serving changes nothing and
// returns the current pointer.
func (s *Store) Promote(ctx context.Context, modelName, version, reason string) (Pointer, error) {
	if err := checkModel(modelName); err != nil {
		return Pointer{}, err
	}
	if err := checkVersion(version); err != nil {
		return Pointer{}, err
	}
	if strings.TrimSpace(reason) == "" || len(reason) > MaxReasonLen {
		return Pointer{}, fmt.Errorf("%w: reason length (got=%d, want 1..%d, not blank)", ErrInvalid, len(reason), MaxReasonLen)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := s.manifest(ctx, modelName, version); err != nil {
		return Pointer{}, err
	}
	for attempt := 0; attempt < 100; attempt++ {
		cur, err := s.serving(ctx, modelName)
		var rev uint64
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return Pointer{}, err
		default:
			if cur.Version == version {
				return cur, nil
			}
			rev = cur.Revision
		}
		p := Pointer{Model: modelName, Version: version, Previous: cur.Version, Reason: reason, At: s.now().UTC()}
		b, _ := json.Marshal(p)
		if rev == 0 {
			p.Revision, err = s.kv.Create(ctx, modelName, b)
		} else {
			p.Revision, err = s.kv.Update(ctx, modelName, b, rev)
		}
		if err == nil {
			return p, nil
		}
		if !isConflict(err) {
			return Pointer{}, fmt.Errorf("modelstore: promote %s %s: %w", modelName, version, err)
		}
	}
	return Pointer{}, fmt.Errorf("modelstore: promote %s %s: too many concurrent changes", modelName, version)
}

// Rollback makes an earlier version serve: to, or when to is "" the
// version that served before the current one (Pointer.Previous; ErrNoPrevious
// when there is none). A rollback is a new pointer revision with reason
// "rollback from <current>", so the history keeps it.
func (s *Store) Rollback(ctx context.Context, modelName, to string) (Pointer, error) {
	cur, err := s.Serving(ctx, modelName)
	if err != nil {
		return Pointer{}, err
	}
	if to == "" {
		if cur.Previous == "" {
			return Pointer{}, fmt.Errorf("%w: model %s serves %s, the first version it served", ErrNoPrevious, modelName, cur.Version)
		}
		to = cur.Previous
	}
	return s.Promote(ctx, modelName, to, "rollback from "+cur.Version)
}

// History returns the serving pointer's past values still kept by the KV
// bucket (the last schema.ModelHistory), oldest first. Empty when the
// model never had a serving version.
func (s *Store) History(ctx context.Context, modelName string) ([]Pointer, error) {
	if err := checkModel(modelName); err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	es, err := s.kv.History(ctx, modelName)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("modelstore: history of %s: %w", modelName, err)
	}
	out := make([]Pointer, 0, len(es))
	for _, e := range es {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		p, err := decodePointer(e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Served is one period during which a version served.
type Served struct {
	From   time.Time `json:"from"`
	Until  time.Time `json:"until,omitzero"` // zero while it still serves
	Reason string    `json:"reason"`
}

// Version is one stored version: its manifest, its size, and when and why
// it served (from the pointer history).
type Version struct {
	Version  string         `json:"version"`
	Manifest model.Manifest `json:"manifest"`
	Bytes    uint64         `json:"bytes"` // size of model.onnx
	Serving  bool           `json:"serving"`
	Served   []Served       `json:"served,omitempty"`
	// Files are the names of the version's extra files (Push), sorted.
	Files []string `json:"files,omitempty"`
}

// Versions returns every stored version of modelName, oldest first, with
// the periods each served according to the pointer history
// (ErrNotFound when the model has no version).
func (s *Store) Versions(ctx context.Context, modelName string) ([]Version, error) {
	if err := checkModel(modelName); err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	infos, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	sizes := map[string]uint64{}
	files := map[string][]string{}
	var versions []string
	for _, in := range infos {
		mn, v, file, ok := splitObject(in.Name)
		if !ok || mn != modelName {
			continue
		}
		switch file {
		case ONNXObject:
			sizes[v] = in.Size
		case ManifestObject:
			versions = append(versions, v)
		default:
			files[v] = append(files[v], file)
		}
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("%w: model %s has no stored version", ErrNotFound, modelName)
	}
	slices.SortFunc(versions, CompareVersions)
	hist, err := s.History(ctx, modelName)
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(versions))
	idx := map[string]int{}
	for _, v := range versions {
		m, err := s.manifest(ctx, modelName, v)
		if err != nil {
			return nil, err
		}
		idx[v] = len(out)
		slices.Sort(files[v])
		out = append(out, Version{Version: v, Manifest: m, Bytes: sizes[v], Files: files[v]})
	}
	for i, p := range hist {
		j, ok := idx[p.Version]
		if !ok {
			continue // a pointer to a deleted version
		}
		sv := Served{From: p.At, Reason: p.Reason}
		if i+1 < len(hist) {
			sv.Until = hist[i+1].At
		} else {
			out[j].Serving = true
		}
		out[j].Served = append(out[j].Served, sv)
	}
	return out, nil
}

func (s *Store) list(ctx context.Context) ([]*jetstream.ObjectInfo, error) {
	infos, err := s.obj.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("modelstore: list objects: %w", err)
	}
	return infos, nil
}

// splitObject splits "<model>/<version>/<file>".
func splitObject(name string) (modelName, version, file string, ok bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// List returns the names of every model with a stored version or a
// serving pointer, sorted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	infos, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, in := range infos {
		if mn, _, file, ok := splitObject(in.Name); ok && file == ManifestObject {
			seen[mn] = true
		}
	}
	lister, err := s.kv.ListKeysFiltered(ctx, "*")
	if err != nil {
		return nil, fmt.Errorf("modelstore: list keys: %w", err)
	}
	for k := range lister.Keys() {
		if schema.ValidateModel(k) == nil {
			seen[k] = true
		}
	}
	_ = lister.Stop()
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}
