"""The packing station (edge agent): store, bench workflow, kiosk."""
