// Package data builds training data the data-block way: where items come
// from, how they are labelled, how they are split, how they are transformed
// (augmentations that move masks and points with the image) and how they
// are batched (parallel decode and augmentation).
//
// # Blocks
//
// Each decision is a small value, combined by Blocks.Build:
//
//   - sources make Entries: FromFolder (image files, recursive), FromCSV
//     (one row per image, with Folder/Suffix; a row naming a missing image
//     is an error naming the CSV, the row and the image), FromIDX (MNIST
//     style files, in memory), FromVideo (frames through pkg/video);
//   - labellers give each entry a Target: LabelFromFolder,
//     LabelFromColumn (with a separator for multi-label, Planet style),
//     LabelFunc, MaskFromFile / MaskFromColumn (a PNG of class ids the size
//     of the image), PointsFromColumns / PointsFunc (pixel coordinates);
//   - splitters divide entries: RandomSplit (fraction, seed), SplitByFolder,
//     SplitByNames (a file of validation names), SplitByFunc,
//     SplitBySegments (contiguous runs of video frames with a gap, so
//     neighbouring frames cannot leak across). All are deterministic and
//     return disjoint sorted indices.
//
// Build checks every target up front (unknown classes, missing masks, masks
// whose size differs from their image, point counts) and returns a Split of
// two Datasets that decode files on Get. Cache memoizes decoded items.
//
// # Coordinates
//
// Pixel coordinates are continuous: pixel (i, j) covers [i,i+1)x[j,j+1),
// its centre is (i+0.5, j+0.5). Item.Points are normalised to [-1,1] of
// their image: x' = 2x/W - 1, y' = 2y/H - 1, so a difference of d in x' is
// d/2 of the width.
//
// # Augmentation
//
// SampleTransform draws one item's Transform from an Augment config (flip,
// the 8 dihedral symmetries, rotate, zoom, perspective warp with MaxWarp 0
// meaning off, lighting) and the resize method (Squish or a square Crop).
// The geometry is a single 3x3 matrix View from output to input
// coordinates in [-1,1], so every item is resampled once: the image
// bilinearly (padding by reflection, zeros or border), the mask by nearest
// neighbour with Void wherever the view leaves the image, and points move
// through the inverse matrix. Lighting is a 256-entry table (fastai's
// logit-space brightness and contrast).
//
// # Loading
//
// Load runs a pass over a dataset: one feeder and Workers goroutines, each
// building whole batches, at most Prefetch ahead of Next, which returns them
// in order. The order (Shuffle) and every item's transform derive from
// (Seed, Epoch, position), so the batches are the same whatever the worker
// count. Close cancels and joins every goroutine; ctx bounds the pass.
// Batch.X is (N, C, Size, Size) float32 RGB, (pixel/255 - mean)/std with
// per-channel stats (ComputeStats); Batch.Y is per task as documented on
// Batch.
//
// # Demo datasets and the on-disk format
//
// Prepare(ctx, name, dir, seed, progress) builds one of Names() into dir
// from Debian packages, deterministically for a seed, replacing dir
// atomically (it is built in dir.partial first). Open(dir) reads it back;
// Locate finds dir by name under a root.
//
//   - fashion (dataset-fashion-mnist): the official 60k/10k split, the test
//     set as validation; 28x28 gray, 10 classes.
//   - fashion-tiles: 40,000 training and 2,000 validation 64x64 gray tiles,
//     each with 1-4 Fashion-MNIST items placed without overlap (training
//     items in training tiles, test items in validation tiles); dark
//     (gamma 2.5) and haze (blur and a light veil) at random, p=0.25 each.
//     12 classes: the 10 items, haze, dark.
//   - vtest-people (opencv-doc vtest.avi): all 795 frames at 192x144 with
//     masks background/person/Void from MOG2 (two passes over the whole
//     video at 384x288, morphological clean-up, shadows and a thin border
//     band Void); 5 contiguous time segments, one validation, 8 frames
//     dropped beside each boundary.
//   - megamind-face (opencv-doc Megamind.avi, opencv-data cascade): frames
//     with exactly one Haar frontal face (100+ px) at 240x176, the face
//     centre as one point; a contiguous segment is the validation set.
//
// A prepared dataset is a folder with dataset.json (Manifest: format
// "vireo-dataset/1", name, task, classes, void, points, seed, width, height,
// channels, layout, train/valid parts with counts, source, notes) and
// either
//
//   - layout "idx": the IDX image and label files it names (gzipped or
//     not), or
//   - layout "csv": train.csv and valid.csv with a header row and an
//     "image" column (a PNG path relative to the folder) plus, by task,
//     "labels" (class names separated by spaces), "mask" (a one-channel PNG
//     of class ids, same size as the image), or "x0","y0",... (pixel
//     coordinates of the stored image); video datasets add "frame".
//
// Every error about files or their contents wraps ErrData and names the
// file; nothing on a bad input panics (OpenCV is only reached through
// pkg/video's checks or with Mats whose sizes were checked).
package data
