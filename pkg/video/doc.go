// Package video turns video files, RTSP/HTTP streams, camera devices and
// still JPEG/PNG images into frames for the frames service: decoded with
// OpenCV (gocv), sampled, and resized to the model's input size as uint8 BGR
// pixels in HWC order.
//
// # Sources
//
// Every source implements Source: Next(ctx) (Frame, error), Stats(), Close().
//
//   - OpenFile: a video file (gocv.VideoCaptureFile, FFmpeg backend).
//   - OpenURL: an rtsp, rtsps, http or https stream; reconnects with
//     exponential backoff and jitter (Config.Backoff) and counts reconnects.
//   - OpenDevice: a camera by index (/dev/videoN, V4L2 backend); reconnects
//     like OpenURL.
//   - NewImages: still images in memory; DecodeImage decodes one image.
//
// # Seq, time and sampling
//
// Frame.Seq is the 0-based index of the frame among the frames the source
// decoded successfully, counted before sampling. With Config.EveryN = 5 the
// emitted seqs are 0, 5, 10, ...: vtest.avi (795 frames) gives 159 frames,
// seqs 0..790. Frames that fail to decode get no seq. (A file on the FFmpeg
// backend only grabs the frames EveryN sampling will drop: decoded, so they
// count, but not converted to BGR.) A live source keeps
// counting across reconnects. Seqs of one source strictly increase, so results
// can be ordered by (source, seq).
//
// Frame.StreamTime is the position in the stream from CAP_PROP_POS_MSEC,
// made strictly increasing (an invalid or non-increasing reading becomes
// previous + 1/declared fps, or + 40 ms when the fps is unknown; after a
// reconnect a new segment starts one period after the last frame).
// Config.FPS samples on this stream time, not on the wall clock, so sampling
// a file by fps keeps the same frames on every run. Frame.Captured is the
// wall-clock decode time.
//
// # Blocking, ownership, drop policy
//
// A Capture (file, URL, device) owns exactly one goroutine, the capture
// loop, started by its Open function and joined by Close. Only that goroutine
// touches the gocv.VideoCapture and the scratch Mats, and it closes them
// (deferred) when it returns. No Mat leaves the package: frames carry Go
// byte slices, owned by the receiver of Next.
//
// Between the loop and Next sits a bounded ring (Config.QueueLen):
//   - files are lossless: when the ring is full the loop blocks until the
//     consumer calls Next, so every sampled frame is delivered;
//   - URLs and devices drop the OLDEST queued frame when the ring is full, so
//     the loop never falls behind the camera and the consumer always gets
//     the freshest frames; every drop is counted in Stats.Dropped.
//
// Next blocks until a frame is queued, the source ends, or its ctx is done
// (which ends only that call). Open* functions take a ctx that bounds the
// source's whole life. Close cancels the loop, waits for it and returns;
// afterwards Next returns ErrClosed. The loop checks for cancellation between
// OpenCV calls; a single OpenCV call cannot be interrupted (a file read takes
// about a millisecond; a network open or read is bounded by FFmpeg's own
// timeouts), so that is how long Close can take at worst. Images has no
// goroutine: Next decodes on the caller's goroutine.
//
// # End of stream
//
// A source ends once, and Next returns the same end error from then on (also
// in Stats.End): io.EOF at the end of a file; an error wrapping ErrTruncated
// and io.EOF when a damaged file stops decoding before the frame count its
// container declares (tree.avi: 68 of 444); ErrTooDamaged past
// Config.MaxDamaged; ErrReconnects past Config.MaxReconnects; ctx.Err() when
// the Open ctx ends; ErrClosed after Close.
//
// # Validation before OpenCV
//
// gocv v0.31 catches no C++ exceptions: an OpenCV error aborts the process.
// So nothing reaches OpenCV unchecked: files must exist, be regular, readable
// and non-empty (and have no '%' in their name, which OpenCV reads as an image
// sequence pattern); URLs must parse with an allowed scheme and a host; image
// bytes are sniffed by magic number (JPEG or PNG only) and their headers are
// parsed here (SniffImage) to check the declared size against ImageLimits
// (decompression bombs) and to reject truncated files, all before
// gocv.IMDecode. Decoded Mats are checked (non-empty, 8-bit, 1, 3 or 4
// channels; gray and BGRA are converted to BGR) before resizing. Resizing
// uses INTER_AREA when shrinking and INTER_LINEAR when growing.
package video
