"""Fake runner: prints usage and exits 9 without an image (like C without required inputs)."""

import sys

print("usage: nanoBragg -mat auto.mat -hkl Fs.hkl")
sys.exit(9)
