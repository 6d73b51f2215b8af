"""Receiver: equalisation, demodulation, key-region decoding, inpainting, compositing."""
