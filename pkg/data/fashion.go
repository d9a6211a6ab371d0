package data

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// FashionClasses are Fashion-MNIST's ten classes in label order (names
// without spaces, so multi-label CSVs can separate them with spaces).
var fashionClasses = [...]string{"tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"}

// FashionClasses returns Fashion-MNIST's class names in label order.
func FashionClasses() []string { return append([]string(nil), fashionClasses[:]...) }

// Fashion-MNIST's files in the Debian package.
var fashionFiles = [4]string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}

// readFashion reads and checks the Debian package's four files.
func readFashion(dir string) (train, test *IDXImages, err error) {
	for _, f := range fashionFiles {
		if err := need(filepath.Join(dir, f), "dataset-fashion-mnist"); err != nil {
			return nil, nil, err
		}
	}
	p := func(i int) string { return filepath.Join(dir, fashionFiles[i]) }
	if train, err = ReadIDXImages(p(0), p(1), len(fashionClasses)); err != nil {
		return nil, nil, err
	}
	if test, err = ReadIDXImages(p(2), p(3), len(fashionClasses)); err != nil {
		return nil, nil, err
	}
	for _, d := range []*IDXImages{train, test} {
		if d.H != 28 || d.W != 28 {
			return nil, nil, fmt.Errorf("%w: %s/%s: image size (got=%dx%d, want=28x28)", ErrData, dir, d.Names, d.W, d.H)
		}
	}
	return train, test, nil
}

// prepareFashion copies the official split (60k train / 10k test as the
// validation set) after checking every file decodes.
func prepareFashion(_ context.Context, cfg *PrepareConfig, out string) (*Manifest, error) {
	cfg.Progress("check", 0, 1)
	train, test, err := readFashion(cfg.FashionDir)
	if err != nil {
		return nil, err
	}
	cfg.Progress("check", 1, 1)
	for i, f := range fashionFiles {
		cfg.Progress("copy", i, len(fashionFiles))
		if err := copyFile(filepath.Join(cfg.FashionDir, f), filepath.Join(out, f)); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrData, f, err)
		}
	}
	cfg.Progress("copy", len(fashionFiles), len(fashionFiles))
	return &Manifest{
		Task: Classify, Classes: FashionClasses(), Width: 28, Height: 28, Channels: 1, Layout: "idx",
		Train:  Part{Images: fashionFiles[0], Labels: fashionFiles[1], Count: train.N},
		Valid:  Part{Images: fashionFiles[2], Labels: fashionFiles[3], Count: test.N},
		Source: "Debian dataset-fashion-mnist (official 60k/10k split; the test set is the validation set)",
	}, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
