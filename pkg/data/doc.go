// Package data builds training data the data-block way: where items come
// from, how they are labelled, how they are split, how they are transformed
// (augmentations that move masks and points with the image) and how they
// are batched (parallel decode and augmentation).
//
// The four demo datasets (fashion, fashion-tiles, vtest-people,
// megamind-face) are prepared from Debian packages by Prepare.
package data
