"""Video in and out (PyAV): decoding, H.264 encoding with audio, and the on-disk spools that
keep frames and masks out of RAM."""
