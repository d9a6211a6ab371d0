package video

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

// pngWithHeader builds a structurally valid PNG (IHDR with a correct CRC, an
// IDAT, an IEND) declaring w x h; its IDAT is not a real image.
func pngWithHeader(w, h uint32, colorType byte) []byte {
	var b bytes.Buffer
	b.Write(pngMagic)
	chunk := func(typ string, data []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(data)))
		b.Write(l[:])
		td := append([]byte(typ), data...)
		b.Write(td)
		binary.BigEndian.PutUint32(l[:], crc32.ChecksumIEEE(td))
		b.Write(l[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, colorType
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// jpegWithSOF builds a JPEG whose frame header declares w x h (at most
// 65535 per side: JPEG stores sizes in 16 bits), with a scan and an EOI.
func jpegWithSOF(w, h uint16) []byte {
	b := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 'J', 'F'}
	sof := []byte{0xFF, 0xC0, 0x00, 0x11, 8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 3,
		1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0}
	b = append(b, sof...)
	b = append(b, 0xFF, 0xDA, 0x00, 0x0C, 3, 1, 0, 2, 0, 3, 0, 0, 63, 0, 0x12, 0x34)
	return append(b, 0xFF, 0xD9)
}

func TestSniffImageRejects(t *testing.T) {
	lim := DefaultImageLimits()
	messi := readData(t, "messi5.jpg")
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrImageFormat},
		{"random", randomBytes(4096, 1), ErrImageFormat},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), ErrImageFormat},
		{"jpeg segment length 1", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0, 0}, ErrImageHeader},
		{"jpeg scan before frame header", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9}, ErrImageHeader},
		{"jpeg magic only", []byte{0xFF, 0xD8, 0xFF}, ErrTruncated},
		{"truncated jpeg (first half of messi5.jpg)", messi[:len(messi)/2], ErrTruncated},
		{"jpeg without EOI", messi[:len(messi)-2], ErrTruncated},
		{"jpeg bomb 65000x65000", jpegWithSOF(65000, 65000), ErrImageTooLarge},
		{"jpeg zero height", jpegWithSOF(100, 0), ErrImageHeader},
		{"png bomb 100000x100000", pngWithHeader(100000, 100000, 2), ErrImageTooLarge},
		{"png too wide", pngWithHeader(20000, 10, 2), ErrImageTooLarge},
		{"png zero width", pngWithHeader(0, 10, 2), ErrImageHeader},
		{"png bad color type", pngWithHeader(10, 10, 5), ErrImageHeader},
		{"png header only", pngWithHeader(10, 10, 2)[:33], ErrTruncated},
		{"png without IEND", pngWithHeader(10, 10, 2)[:len(pngWithHeader(10, 10, 2))-12], ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := SniffImage(c.in, lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("got err=%v, want %v", err, c.want)
			}
		})
	}
	bad := pngWithHeader(10, 10, 2)
	bad[20] ^= 1 // width byte: IHDR CRC no longer matches
	if _, err := SniffImage(bad, lim); !errors.Is(err, ErrImageHeader) || !strings.Contains(err.Error(), "crc") {
		t.Fatalf("png with bad IHDR crc: got %v", err)
	}
	if _, err := SniffImage(messi, ImageLimits{MaxBytes: 100, MaxWidth: 1 << 20, MaxHeight: 1 << 20, MaxPixels: 1 << 40}); !errors.Is(err, ErrImageTooLarge) {
		t.Fatalf("over MaxBytes: got %v", err)
	}
	if _, err := SniffImage(messi, ImageLimits{MaxBytes: 1 << 30, MaxWidth: 1 << 20, MaxHeight: 1 << 20, MaxPixels: 1000}); !errors.Is(err, ErrImageTooLarge) {
		t.Fatalf("over MaxPixels: got %v", err)
	}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if b[0] == 0xFF || b[0] == 0x89 {
		b[0] = 0
	}
	return b
}

// The bombs, random bytes and truncated files must be refused by DecodeImage
// without reaching OpenCV (which would abort the process on a bomb).
func TestDecodeImageRejectsBeforeOpenCV(t *testing.T) {
	messi := readData(t, "messi5.jpg")
	for name, in := range map[string][]byte{
		"png bomb":  pngWithHeader(100000, 100000, 6),
		"jpeg bomb": jpegWithSOF(65535, 65535),
		"random":    randomBytes(1000, 3),
		"truncated": messi[:len(messi)/2],
		"empty":     {},
	} {
		if _, err := DecodeImage(in, testConfig(224, 224)); err == nil {
			t.Errorf("%s: decoded, want an error", name)
		}
	}
}

// A header that passes validation over a body that is not an image: OpenCV
// returns an empty Mat and DecodeImage reports ErrDecode.
func TestDecodeImageGarbageBody(t *testing.T) {
	for name, in := range map[string][]byte{
		"png": pngWithHeader(64, 64, 2),
		"jpg": jpegWithSOF(64, 64),
	} {
		if _, err := DecodeImage(in, testConfig(32, 32)); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: got %v, want ErrDecode", name, err)
		}
	}
}

func TestDecodeImageMessi(t *testing.T) {
	b := readData(t, "messi5.jpg")
	info, err := SniffImage(b, DefaultImageLimits())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(224, 160)
	cfg.KeepOriginal = true
	f, err := DecodeImage(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f.OrigWidth != info.Width || f.OrigHeight != info.Height || f.Width != 224 || f.Height != 160 {
		t.Fatalf("sizes: got orig %dx%d model %dx%d, header %dx%d", f.OrigWidth, f.OrigHeight, f.Width, f.Height, info.Width, info.Height)
	}
	if len(f.Pixels) != 224*160*3 || len(f.Orig) != info.Width*info.Height*3 {
		t.Fatalf("pixel lengths: got %d and %d", len(f.Pixels), len(f.Orig))
	}
	// Same bytes as a plain OpenCV decode + INTER_AREA resize.
	m, err := gocv.IMDecode(b, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := gocv.NewMat()
	defer r.Close()
	gocv.Resize(m, &r, image.Pt(224, 160), 0, 0, gocv.InterpolationArea)
	matchesArea(t, "against gocv IMDecode + Resize(INTER_AREA)", f.Pixels, r.ToBytes(), 0.005)
	if !bytes.Equal(m.ToBytes(), f.Orig) {
		t.Fatal("original pixels differ from gocv IMDecode")
	}
}

// Every JPEG/PNG in opencv-doc's data (gray, palette, gray+alpha, RGBA, RGB)
// sniffs to the size OpenCV decodes, and comes out as BGR at model size.
func TestDecodeImageSamples(t *testing.T) {
	dataFile(t, "messi5.jpg")
	var files []string
	for _, pat := range []string{"*.jpg", "*.png"} {
		m, _ := filepath.Glob(filepath.Join(dataDir, pat))
		files = append(files, m...)
	}
	if testing.Short() && len(files) > 12 {
		files = files[:12]
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		info, err := SniffImage(b, DefaultImageLimits())
		if err != nil {
			t.Errorf("%s: sniff: %v", filepath.Base(p), err)
			continue
		}
		f, err := DecodeImage(b, testConfig(96, 64))
		if err != nil {
			t.Errorf("%s: decode: %v", filepath.Base(p), err)
			continue
		}
		if f.OrigWidth != info.Width || f.OrigHeight != info.Height || len(f.Pixels) != 96*64*3 {
			t.Errorf("%s: got orig %dx%d (%d bytes), header says %dx%d", filepath.Base(p), f.OrigWidth, f.OrigHeight, len(f.Pixels), info.Width, info.Height)
		}
	}
	if len(files) < 10 {
		t.Fatalf("only %d sample images found", len(files))
	}
}

// Gray and BGRA Mats become BGR; a 2-channel or float Mat is refused.
func TestConverterChannels(t *testing.T) {
	cfg := testConfig(4, 2)
	conv := newConverter(&cfg)
	defer conv.Close()

	gray, err := gocv.NewMatFromBytes(2, 4, gocv.MatTypeCV8UC1, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	if err != nil {
		t.Fatal(err)
	}
	defer gray.Close()
	var f Frame
	if err := conv.fill(&gray, &f); err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8}
	if !bytes.Equal(f.Pixels, want) {
		t.Fatalf("gray->bgr: got %v, want %v", f.Pixels, want)
	}

	bgra := make([]byte, 2*4*4)
	for i := range 8 {
		bgra[4*i], bgra[4*i+1], bgra[4*i+2], bgra[4*i+3] = byte(i), byte(10+i), byte(20+i), 255
	}
	m4, err := gocv.NewMatFromBytes(2, 4, gocv.MatTypeCV8UC4, bgra)
	if err != nil {
		t.Fatal(err)
	}
	defer m4.Close()
	if err := conv.fill(&m4, &f); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if f.Pixels[3*i] != byte(i) || f.Pixels[3*i+1] != byte(10+i) || f.Pixels[3*i+2] != byte(20+i) {
			t.Fatalf("bgra->bgr pixel %d: got %v", i, f.Pixels[3*i:3*i+3])
		}
	}

	for _, typ := range []gocv.MatType{gocv.MatTypeCV8UC2, gocv.MatTypeCV32FC3} {
		m := gocv.NewMatWithSize(2, 4, typ)
		err := conv.fill(&m, &f)
		m.Close()
		if !errors.Is(err, ErrDecode) {
			t.Errorf("type %v: got %v, want ErrDecode", typ, err)
		}
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if err := conv.fill(&empty, &f); !errors.Is(err, ErrDecode) {
		t.Errorf("empty mat: got %v, want ErrDecode", err)
	}
}

// Growing uses INTER_LINEAR.
func TestDecodeImageUpscaleLinear(t *testing.T) {
	b := readData(t, "box.png") // 324x223 gray
	f, err := DecodeImage(b, testConfig(640, 480))
	if err != nil {
		t.Fatal(err)
	}
	m, err := gocv.IMDecode(b, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := gocv.NewMat()
	defer r.Close()
	gocv.Resize(m, &r, image.Pt(640, 480), 0, 0, gocv.InterpolationLinear)
	if !bytes.Equal(r.ToBytes(), f.Pixels) {
		t.Fatal("pixels differ from gocv Resize(INTER_LINEAR)")
	}
}

func TestImagesSource(t *testing.T) {
	messi := readData(t, "messi5.jpg")
	png := readData(t, "box.png")
	src, err := NewImages(testConfig(32, 32), messi, randomBytes(100, 9), png, messi[:1000])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	for want := int64(0); want < 2; want++ {
		f, err := src.Next(ctx)
		if err != nil || f.Seq != want {
			t.Fatalf("next: got seq=%d err=%v, want seq=%d", f.Seq, err, want)
		}
	}
	if _, err := src.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("end: got %v, want io.EOF", err)
	}
	st := src.Stats()
	if st.Decoded != 2 || st.Damaged != 2 || !errors.Is(st.LastErr, ErrTruncated) || !errors.Is(st.End, io.EOF) {
		t.Fatalf("stats: %+v", st)
	}
	src.Close()
	if _, err := src.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after close of an ended source: got %v, want its end io.EOF", err)
	}
}

// FuzzSniffImage: the sniffer never panics, and whatever it accepts is within
// the limits and has a sane size.
func FuzzSniffImage(f *testing.F) {
	f.Add(pngWithHeader(10, 10, 2))
	f.Add(pngWithHeader(100000, 100000, 6))
	f.Add(jpegWithSOF(640, 480))
	f.Add([]byte{0xFF, 0xD8, 0xFF})
	if b, err := os.ReadFile(filepath.Join(dataDir, "messi5.jpg")); err == nil {
		f.Add(b[:2048])
		f.Add(b)
	}
	if b, err := os.ReadFile(filepath.Join(dataDir, "mask.png")); err == nil {
		f.Add(b)
	}
	lim := ImageLimits{MaxBytes: 1 << 20, MaxWidth: 4096, MaxHeight: 4096, MaxPixels: 1 << 22}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := SniffImage(b, lim)
		if err != nil {
			return
		}
		if info.Width < 1 || info.Height < 1 || info.Width > lim.MaxWidth || info.Height > lim.MaxHeight ||
			int64(info.Width)*int64(info.Height) > lim.MaxPixels || info.Channels < 1 || info.Channels > 4 {
			t.Fatalf("accepted out-of-limit image: %+v", info)
		}
		if info.Format == FormatUnknown {
			t.Fatal("accepted unknown format")
		}
	})
}

// FuzzDecodeImage feeds whatever the sniffer accepts to OpenCV: any input
// that aborts the process (an uncaught OpenCV exception) is a crash here.
func FuzzDecodeImage(f *testing.F) {
	f.Add(pngWithHeader(10, 10, 2))
	f.Add(jpegWithSOF(64, 48))
	if b, err := os.ReadFile(filepath.Join(dataDir, "mask.png")); err == nil {
		f.Add(b)
	}
	if b, err := os.ReadFile(filepath.Join(dataDir, "LinuxLogo.jpg")); err == nil {
		f.Add(b)
	}
	cfg := Config{Width: 16, Height: 16, Limits: ImageLimits{MaxBytes: 1 << 20, MaxWidth: 1024, MaxHeight: 1024, MaxPixels: 1 << 18}}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeImage(b, cfg)
		if err != nil && strings.Contains(err.Error(), "decoded size") {
			// The header parser and the decoder disagree: a size check
			// made on the header would not bound what OpenCV allocates.
			t.Fatalf("sniffer and OpenCV disagree: %v", err)
		}
		if err == nil && len(fr.Pixels) != 16*16*3 {
			t.Fatalf("pixels: got %d bytes", len(fr.Pixels))
		}
	})
}

// TestBGRToGrey equals OpenCV's COLOR_BGR2GRAY on a real frame and on
// white, black, pure blue and pure red.
func TestBGRToGrey(t *testing.T) {
	if got := BGRToGrey([]byte{255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255}); string(got) != string([]byte{255, 0, 29, 76}) {
		t.Errorf("white, black, blue, red = %v (want 255 0 29 76, OpenCV's)", got)
	}
	m := gocv.IMRead(dataFile(t, "messi5.jpg"), gocv.IMReadColor)
	defer m.Close()
	g := gocv.NewMat()
	defer g.Close()
	gocv.CvtColor(m, &g, gocv.ColorBGRToGray)
	got, want := BGRToGrey(m.ToBytes()), g.ToBytes()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pixel %d: %d, OpenCV %d", i, got[i], want[i])
		}
	}
}
