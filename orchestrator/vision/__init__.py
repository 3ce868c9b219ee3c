"""Image algorithms the stages share: crop geometry, compositing, object-track stitching and
optical flow. Numpy in, numpy out: no I/O, no models."""
