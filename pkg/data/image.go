package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // JPEG items
	"image/png"
	"os"
)

// Image is decoded pixels: uint8, HWC, BGR for 3 channels, or 1 channel.
type Image struct {
	Pixels                  []byte
	Width, Height, Channels int
}

// maxImagePixels bounds what an image file may declare (decompression
// bombs): 64 megapixels.
const maxImagePixels = 64 << 20

// ReadImage decodes a PNG or JPEG file into an Image: gray files give one
// channel, everything else three (BGR). Errors wrap ErrData and name the
// file.
func ReadImage(path string) (Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	im, err := DecodeImage(b)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	return im, nil
}

// ImageSize reads only the header of a PNG or JPEG file.
func ImageSize(path string) (w, h int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	return cfg.Width, cfg.Height, nil
}

// DecodeImage decodes PNG or JPEG bytes (errors are not wrapped: callers
// add the file name).
func DecodeImage(b []byte) (Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return Image{}, err
	}
	if cfg.Width < 1 || cfg.Height < 1 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return Image{}, fmt.Errorf("image size (got=%dx%d, want 1..%d pixels)", cfg.Width, cfg.Height, maxImagePixels)
	}
	m, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return Image{}, err
	}
	return fromImage(m), nil
}

func fromImage(m image.Image) Image {
	r := m.Bounds()
	w, h := r.Dx(), r.Dy()
	switch g := m.(type) {
	case *image.Gray:
		out := Image{Pixels: make([]byte, w*h), Width: w, Height: h, Channels: 1}
		for y := 0; y < h; y++ {
			copy(out.Pixels[y*w:(y+1)*w], g.Pix[y*g.Stride:y*g.Stride+w])
		}
		return out
	case *image.NRGBA:
		out := Image{Pixels: make([]byte, w*h*3), Width: w, Height: h, Channels: 3}
		for y := 0; y < h; y++ {
			row := g.Pix[y*g.Stride:]
			for x := 0; x < w; x++ {
				o := (y*w + x) * 3
				out.Pixels[o], out.Pixels[o+1], out.Pixels[o+2] = row[4*x+2], row[4*x+1], row[4*x]
			}
		}
		return out
	}
	if m.ColorModel() == color.GrayModel {
		out := Image{Pixels: make([]byte, w*h), Width: w, Height: h, Channels: 1}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				out.Pixels[y*w+x] = color.GrayModel.Convert(m.At(r.Min.X+x, r.Min.Y+y)).(color.Gray).Y
			}
		}
		return out
	}
	out := Image{Pixels: make([]byte, w*h*3), Width: w, Height: h, Channels: 3}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(m.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA)
			o := (y*w + x) * 3
			out.Pixels[o], out.Pixels[o+1], out.Pixels[o+2] = c.B, c.G, c.R
		}
	}
	return out
}

// toImage converts to a Go image (Gray or NRGBA) for encoding.
func (im Image) toImage() image.Image {
	r := image.Rect(0, 0, im.Width, im.Height)
	if im.Channels == 1 {
		return &image.Gray{Pix: im.Pixels, Stride: im.Width, Rect: r}
	}
	g := image.NewNRGBA(r)
	for i := 0; i < im.Width*im.Height; i++ {
		g.Pix[4*i], g.Pix[4*i+1], g.Pix[4*i+2], g.Pix[4*i+3] = im.Pixels[3*i+2], im.Pixels[3*i+1], im.Pixels[3*i], 255
	}
	return g
}

// EncodePNG encodes an Image (1 or 3 channels) as PNG.
func EncodePNG(im Image) ([]byte, error) {
	if im.Channels != 1 && im.Channels != 3 || len(im.Pixels) != im.Width*im.Height*im.Channels {
		return nil, fmt.Errorf("%w: png: image shape (got=%dx%dx%d with %d bytes)", ErrData, im.Width, im.Height, im.Channels, len(im.Pixels))
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	if err := enc.Encode(&buf, im.toImage()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WritePNG writes an Image as a PNG file.
func WritePNG(path string, im Image) error {
	b, err := EncodePNG(im)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, b, 0o644)
}
