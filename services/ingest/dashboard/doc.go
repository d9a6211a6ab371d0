// Package dashboard is Vireo's built-in web dashboard, served by ingest at
// "/": plain HTML, CSS and JavaScript embedded with embed (nothing to
// build, nothing else to install), live updates over server-sent events
// fed by NATS subscriptions, and the kept frame behind each result as a
// PNG.
//
// # Routes (Register adds them to ingest's mux)
//
//	GET /                                                  the dashboard (index.html)
//	GET /static/{file}                                     its CSS and JavaScript
//	GET /v1/events                                         text/event-stream (below)
//	GET /v1/models/{model}/sources/{source}/frames/{seq}   the kept input frame as PNG
//
// The frame route reads <p>.kept.<model>.<source>.<seq> from FRAMES_KEEP
// (direct get of the subject's last message) and encodes its pixels (model
// input size, BGR in the batch) as an RGB or grey PNG. Headers
// Vireo-Orig-Width/Height give the size of the frame as captured (result
// points are in those pixels) and Vireo-Model-Version the version whose
// result it produced. 404 frame_not_kept when it is not (or no longer)
// there.
//
// # Events
//
// Each client of /v1/events gets, as SSE events with JSON data:
//
//	result  a schema.Result from <p>.results.<model>.<source>, as published
//	end     a schema.EndOfStream from <p>.events.<source>
//	error   a schema.Error from <p>.errors.<service>
//	model   a modelstore.Pointer: the serving version of a model changed
//	        (a core subscription on the MODELS KV bucket's subjects)
//	stats   every StatsEvery: {dropped: {source: n}, published: {source: n},
//	        clients, events_dropped} from the metrics registry when it is a
//	        prometheus.Gatherer (vireo up: every service's counters)
//
// On connect a client first gets the last result of every (model, source)
// seen (at most MaxLatest), so a page opened mid-stream shows frames at
// once. The stream starts with "retry: 1000" and the page's EventSource
// reconnects by itself (and the page re-opens it with a backoff when the
// browser gives up).
//
// # The page
//
// Live view: one card per (model, source) with the latest frame and its
// overlay, labels with scores and the threshold, stats, and "This is
// wrong", which opens the correction dialog (pick the label(s), paint the
// mask with a class brush, drag a point) posting to ingest's corrections
// API. Models view: per model its versions (lineage, manifest metrics,
// serving periods, promote/rollback), the training plots of a chosen
// version from GET /v1/models/{model}/versions/{version}/plots/{loss,lr}.png
// ("no training plots recorded for this version" when it has none), and
// the retrain status from GET /v1/models/{model}/retrain (state, stage,
// epoch/epochs, batch/batches, the last run's outcome) with "Retrain now"
// (POST). The status is fetched when the view renders and polled once a
// second only while a run is queued or running and the view is shown.
//
// # Ownership, bounds and shutdown
//
// Run owns the NATS subscriptions and the stats ticker; NATS callbacks
// fan each event out to every client's queue. A client's queue holds at
// most ClientBuffer events: when it is full the oldest event is dropped
// (counted in vireo_ingest_dashboard_events_dropped_total), so a slow
// browser never blocks the subscriptions or other clients. At most
// MaxClients streams are open at once (one more gets 503). Each stream
// runs on its net/http request goroutine; Run, when ctx is done,
// unsubscribes, closes every client queue and waits until every stream
// handler has returned.
package dashboard
