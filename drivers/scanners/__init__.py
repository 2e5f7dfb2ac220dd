"""Barcode scanners: serial and evdev, chosen by URL."""
