"""The packing station (edge agent): bench step, device health, store, uplink."""
