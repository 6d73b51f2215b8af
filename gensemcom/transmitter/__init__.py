"""Transmitter: segmentation, background description, key-region encoding, frame building."""
